import t, { type Test } from 'tap';
import { coerce, allowedText, type Origin } from '../../src/config/validate.js';
import type { KeySpec, RawValue, ValueType } from '../../src/config/schema.js';

const origin: Origin = { label: '--x', baseDir: '/base', exitCode: 64 };

function spec(value: ValueType): KeySpec {
  return { key: 'k', value, default: null, doc: '' };
}

function ok(t: Test, value: ValueType, raw: RawValue, expected: unknown): void {
  t.same(coerce(spec(value), raw, origin), expected, `${JSON.stringify(raw)} -> ${JSON.stringify(expected)}`);
}

function bad(t: Test, value: ValueType, raw: RawValue): void {
  t.throws(() => coerce(spec(value), raw, origin), { name: 'ConfigError', key: 'k', exitCode: 64 }, `${JSON.stringify(raw)} refused`);
}

t.test('boolean', async (t) => {
  const v: ValueType = { type: 'boolean' };
  for (const raw of [true, 'true', 'YES', 'on', '1']) ok(t, v, raw, true);
  for (const raw of [false, 'false', 'no', 'Off', '0']) ok(t, v, raw, false);
  for (const raw of ['maybe', 1, null, ['true']]) bad(t, v, raw);
});

t.test('integer within bounds', async (t) => {
  const v: ValueType = { type: 'integer', min: 255, max: 1000 };
  ok(t, v, 255, 255);
  ok(t, v, '1000', 1000);
  for (const raw of [254, '1001', 300.5, '-300', ' 300', '3e2', '', true, null]) bad(t, v, raw);
});

t.test('size with binary suffixes', async (t) => {
  const v: ValueType = { type: 'size' };
  ok(t, v, 0, 0);
  ok(t, v, '512', 512);
  ok(t, v, '10k', 10240);
  ok(t, v, '25M', 25 * 1024 * 1024);
  ok(t, v, '2G', 2 * 1024 ** 3);
  ok(t, v, '1T', 1024 ** 4);
  for (const raw of [-1, 1.5, '1.5M', '10 MB', 'M', '999999999999999T', false]) bad(t, v, raw);
});

t.test('enum', async (t) => {
  const v: ValueType = { type: 'enum', values: ['trash', 'expunge'] };
  ok(t, v, 'trash', 'trash');
  for (const raw of ['Trash', 'shred', 1, null]) bad(t, v, raw);
});

t.test('path: relative resolves against the origin folder; null only when optional', async (t) => {
  ok(t, { type: 'path', isOptional: false }, 'mail', '/base/mail');
  ok(t, { type: 'path', isOptional: false }, '/abs/p', '/abs/p');
  ok(t, { type: 'path', isOptional: true }, null, undefined);
  bad(t, { type: 'path', isOptional: false }, null);
  bad(t, { type: 'path', isOptional: false }, '');
  bad(t, { type: 'path', isOptional: false }, 'a\0b');
  bad(t, { type: 'path', isOptional: false }, 3);
});

t.test('listener', async (t) => {
  const v: ValueType = { type: 'listener', isPathAllowed: false };
  ok(t, v, 110, { kind: 'tcp', host: undefined, port: 110 });
  ok(t, v, '110', { kind: 'tcp', host: undefined, port: 110 });
  ok(t, v, '0.0.0.0:110', { kind: 'tcp', host: '0.0.0.0', port: 110 });
  ok(t, v, '[::]:110', { kind: 'tcp', host: '::', port: 110 });
  ok(t, v, 'mail.example.org:110', { kind: 'tcp', host: 'mail.example.org', port: 110 });
  ok(t, v, false, false);
  ok(t, v, null, false);
  ok(t, v, 'false', false);
  for (const raw of ['', '65536', '-1', 'host:', ':110', '::1:110', '[1.2.3.4]:110', 'a b:110', '110x', 1.5, true, 'x/y', ['110']]) {
    bad(t, v, raw);
  }
  ok(t, { type: 'listener', isPathAllowed: true }, 'run/lmtp.sock', { kind: 'unix', path: '/base/run/lmtp.sock' });
});

t.test('domains and host names', async (t) => {
  const v: ValueType = { type: 'domains' };
  ok(t, v, ['Example.ORG', 'example.org.', 'localhost'], ['example.org', 'localhost']);
  ok(t, v, 'a.test,b.test', ['a.test', 'b.test']);
  ok(t, v, [], []);
  for (const raw of [['-bad.test'], ['a..b'], ['x_y.test'], [`${'a'.repeat(64)}.test`], [3], 5, null]) bad(t, v, raw);
  ok(t, { type: 'hostname' }, 'mx1.example.org', 'mx1.example.org');
  bad(t, { type: 'hostname' }, 'mx 1');
  bad(t, { type: 'hostname' }, '');
});

t.test('layout templates', async (t) => {
  const v: ValueType = { type: 'layout' };
  for (const raw of ['%u', '%d/%n', '%h', '%h/Maildir', 'users/%u', '100%%/%u']) ok(t, v, raw, raw);
  for (const raw of ['', '/abs/%u', '%x', 'static', '%u/../x', './%u', '%d', '%u%', 'a\0%u']) bad(t, v, raw);
});

t.test('greeting text', async (t) => {
  ok(t, { type: 'text', forbidden: '<>' }, 'POP3 ready', 'POP3 ready');
  bad(t, { type: 'text', forbidden: '<>' }, 'ready <now>');
  bad(t, { type: 'text', forbidden: '' }, 'line\r\nbreak');
  bad(t, { type: 'text', forbidden: '' }, 'caf\u00e9');
  bad(t, { type: 'text', forbidden: '' }, '');
  bad(t, { type: 'text', forbidden: '' }, 'x'.repeat(201));
});

t.test('the error names key, origin, value and allowed values; long values are cut', async (t) => {
  const long = 'x'.repeat(200);
  t.throws(() => coerce(spec({ type: 'hostname' }), `${long} y`, origin), {
    message: /^invalid value for k from --x: "x{70,}\.\.\.; allowed: a host name/,
  });
  t.match(allowedText({ type: 'listener', isPathAllowed: true }), /Unix socket PATH/);
  t.notMatch(allowedText({ type: 'listener', isPathAllowed: false }), /Unix/);
});

t.test('command: one line for /bin/sh -c, or none', async (t) => {
  const v: ValueType = { type: 'command' };
  ok(t, v, null, undefined);
  ok(t, v, '', undefined);
  ok(t, v, "spamc -c >/dev/null; case $? in 0) exit 0;; 1) exit 77;; *) exit 75;; esac", "spamc -c >/dev/null; case $? in 0) exit 0;; 1) exit 77;; *) exit 75;; esac");
  for (const raw of ['   ', 'line one\nline two', 'nul\0inside', 'x'.repeat(4097), 5, true, ['spamc']]) bad(t, v, raw);
  t.match(allowedText(v), /\/bin\/sh -c/);
});
