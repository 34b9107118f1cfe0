import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const HOST = 'mail.test';

t.test('built-in defaults: POP3 127.0.0.1:1110, SMTP 127.0.0.1:2525, users beside the cwd', async (t) => {
  const cwd = t.testdir({});
  const config = await loadConfig({ cwd, env: {}, hostname: HOST });
  t.equal(config.configFile, undefined);
  t.same(config.listeners.pop3, { kind: 'tcp', host: '127.0.0.1', port: 1110 });
  t.same(config.listeners.smtp, { kind: 'tcp', host: '127.0.0.1', port: 2525 });
  for (const name of ['pop3s', 'submission', 'smtps', 'lmtp', 'http'] as const) t.equal(config.listeners[name], false, name);
  t.equal(config.users, path.join(cwd, 'passwd'));
  t.equal(config.root, path.join(cwd, 'mail'));
  t.equal(config.layout, '%u');
  t.same(config.domains, ['localhost']);
  t.equal(config.hostname, HOST);
  t.equal(config.deletionMode, 'trash');
  t.equal(config.infoSeparator, ':');
  t.equal(config.uidl, 'filename');
  t.equal(config.logLevel, 'info');
  t.equal(config.trace, false);
  t.equal(config.caseInsensitiveUsers, false);
  t.equal(config.allowPlaintextAuth, false);
  t.same(config.quota, { bytes: 0, messages: 0 });
  t.same(config.tls, { cert: undefined, key: undefined });
  t.equal(config.limits.pop3LineLength, 255);
  t.equal(config.limits.pop3IdleSeconds, 600);
  t.equal(config.limits.smtpLineLength, 512);
  t.equal(config.limits.maxMessageBytes, 25 * 1024 * 1024);
  t.equal(config.greeting.pop3, 'maildird POP3 server ready');
});

t.test('the config is deeply frozen', async (t) => {
  const config = await loadConfig({ cwd: t.testdir({}), env: {}, hostname: HOST });
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.listeners));
  t.ok(Object.isFrozen(config.listeners.pop3));
  t.ok(Object.isFrozen(config.limits));
  t.ok(Object.isFrozen(config.domains));
  t.throws(() => {
    (config.limits as { pop3LineLength: number }).pop3LineLength = 1;
  }, TypeError);
});

t.test('./maildird.json is read when present; relative paths resolve against its folder', async (t) => {
  const cwd = t.testdir({
    'maildird.json': JSON.stringify({ root: 'tree', tls: { cert: 'c.pem', key: 'k.pem' }, layout: '%d/%n' }),
  });
  const config = await loadConfig({ cwd, env: {}, hostname: HOST });
  t.equal(config.configFile, path.join(cwd, 'maildird.json'));
  t.equal(config.root, path.join(cwd, 'tree'));
  t.equal(config.users, path.join(cwd, 'passwd'), 'users default: passwd beside the config file');
  t.same(config.tls, { cert: path.join(cwd, 'c.pem'), key: path.join(cwd, 'k.pem') });
  t.equal(config.layout, '%d/%n');
});

t.test('--config FILE: defaults and file paths resolve against the file folder, flag paths against cwd', async (t) => {
  const dir = t.testdir({ etc: { 'm.json': JSON.stringify({ users: 'users.db' }) }, work: {} });
  const cwd = path.join(dir, 'work');
  const config = await loadConfig({ cwd, env: {}, flags: { config: '../etc/m.json', root: 'here' }, hostname: HOST });
  t.equal(config.configFile, path.join(dir, 'etc', 'm.json'));
  t.equal(config.users, path.join(dir, 'etc', 'users.db'));
  t.equal(config.root, path.join(cwd, 'here'));
});

t.test('MAILDIRD_CONFIG names the file when no flag does', async (t) => {
  const dir = t.testdir({ 'a.json': JSON.stringify({ layout: '%n' }), 'maildird.json': '{}' });
  const config = await loadConfig({ cwd: dir, env: { MAILDIRD_CONFIG: 'a.json' }, hostname: HOST });
  t.equal(config.configFile, path.join(dir, 'a.json'));
  t.equal(config.layout, '%n');
});

t.test('precedence: defaults < file < env < flags', async (t) => {
  const cwd = t.testdir({
    'maildird.json': JSON.stringify({
      listeners: { pop3: '127.0.0.1:2110', http: 8080 },
      logLevel: 'warn',
      limits: { pop3IdleSeconds: 900 },
      domains: ['a.test'],
    }),
  });
  const fileOnly = await loadConfig({ cwd, env: {}, hostname: HOST });
  t.same(fileOnly.listeners.pop3, { kind: 'tcp', host: '127.0.0.1', port: 2110 });
  t.equal(fileOnly.logLevel, 'warn');
  t.equal(fileOnly.limits.pop3IdleSeconds, 900);

  const env = { MAILDIRD_POP3: '127.0.0.2:3110', MAILDIRD_LOG_LEVEL: 'debug', MAILDIRD_LIMITS_POP3_IDLE_SECONDS: '1200' };
  const withEnv = await loadConfig({ cwd, env, hostname: HOST });
  t.same(withEnv.listeners.pop3, { kind: 'tcp', host: '127.0.0.2', port: 3110 });
  t.equal(withEnv.logLevel, 'debug');
  t.equal(withEnv.limits.pop3IdleSeconds, 1200);
  t.same(withEnv.domains, ['a.test']);

  const withFlags = await loadConfig({
    cwd,
    env: { ...env, MAILDIRD_DOMAIN: 'b.test, c.test' },
    flags: { pop3: '4110', 'log-level': 'error', domain: ['D.test', 'e.test.'] },
    hostname: HOST,
  });
  t.same(withFlags.listeners.pop3, { kind: 'tcp', host: undefined, port: 4110 }, 'bare PORT binds every address');
  t.equal(withFlags.logLevel, 'error');
  t.equal(withFlags.limits.pop3IdleSeconds, 1200, 'env still wins where no flag exists');
  t.same(withFlags.domains, ['d.test', 'e.test'], 'flags replace the list; names lower-cased, trailing dot dropped');
  t.same(withFlags.listeners.http, { kind: 'tcp', host: undefined, port: 8080 });

  const envDomains = await loadConfig({ cwd, env: { MAILDIRD_DOMAIN: 'b.test, c.test' }, hostname: HOST });
  t.same(envDomains.domains, ['b.test', 'c.test']);
});

t.test('an empty environment variable counts as unset', async (t) => {
  const config = await loadConfig({ cwd: t.testdir({}), env: { MAILDIRD_LOG_LEVEL: '' }, hostname: HOST });
  t.equal(config.logLevel, 'info');
});

t.test('naming any listener turns the default pair off; false turns one off', async (t) => {
  const cwd = t.testdir({});
  const onlyHttp = await loadConfig({ cwd, env: {}, flags: { http: '127.0.0.1:8080' }, hostname: HOST });
  t.equal(onlyHttp.listeners.pop3, false);
  t.equal(onlyHttp.listeners.smtp, false);
  t.same(onlyHttp.listeners.http, { kind: 'tcp', host: '127.0.0.1', port: 8080 });

  const noPop3 = await loadConfig({ cwd, env: { MAILDIRD_POP3: 'false' }, hostname: HOST });
  t.equal(noPop3.listeners.pop3, false);
  t.equal(noPop3.listeners.smtp, false);

  const file = t.testdir({ 'maildird.json': JSON.stringify({ listeners: { pop3: 1110, smtp: 2525 } }) });
  const off = await loadConfig({ cwd: file, env: {}, flags: { pop3: 'false' }, hostname: HOST });
  t.equal(off.listeners.pop3, false);
  t.same(off.listeners.smtp, { kind: 'tcp', host: undefined, port: 2525 });
});

t.test('listener forms: IPv6, *, host names, Unix socket for LMTP only', async (t) => {
  // A short folder: a socket path holds at most 107 bytes, and tap's fixture folders are long.
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'mdc-'));
  t.teardown(() => fs.rmSync(cwd, { recursive: true, force: true }));
  fs.writeFileSync(path.join(cwd, 'maildird.json'), JSON.stringify({ listeners: { lmtp: 'run/lmtp.sock' } }));
  const config = await loadConfig({
    cwd,
    env: {},
    flags: { pop3: '[::1]:110', smtp: '*:25', submission: 'localhost:587', http: '0' },
    hostname: HOST,
  });
  t.same(config.listeners.pop3, { kind: 'tcp', host: '::1', port: 110 });
  t.same(config.listeners.smtp, { kind: 'tcp', host: undefined, port: 25 });
  t.same(config.listeners.submission, { kind: 'tcp', host: 'localhost', port: 587 });
  t.same(config.listeners.http, { kind: 'tcp', host: undefined, port: 0 });
  t.same(config.listeners.lmtp, { kind: 'unix', path: path.join(cwd, 'run', 'lmtp.sock') });
  await t.rejects(loadConfig({ cwd, env: {}, flags: { pop3: './pop3.sock' }, hostname: HOST }), {
    name: 'ConfigError',
    key: 'listeners.pop3',
  });
  await t.rejects(loadConfig({ cwd, env: {}, flags: { lmtp: `/${'x'.repeat(120)}` }, hostname: HOST }), {
    name: 'ConfigError',
    key: 'listeners.lmtp',
    message: /at most 107 bytes/,
  });
});

/** Load and return the ConfigError, failing the test if there is none. */
async function configError(options: Parameters<typeof loadConfig>[0]): Promise<ConfigError> {
  try {
    await loadConfig({ hostname: HOST, ...options });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('errors name the key, the source, the value and what is allowed', async (t) => {
  const cwd = t.testdir({});
  const fromFlag = await configError({ cwd, env: {}, flags: { pop3: 'abc' } });
  t.equal(fromFlag.key, 'listeners.pop3');
  t.equal(fromFlag.exitCode, 64, 'a bad flag value is a usage error');
  t.match(fromFlag.message, /^invalid value for listeners\.pop3 from --pop3: "abc"; allowed: \[HOST:\]PORT/);

  const fromEnv = await configError({ cwd, env: { MAILDIRD_LIMITS_SMTP_LINE_LENGTH: '100' } });
  t.equal(fromEnv.key, 'limits.smtpLineLength');
  t.equal(fromEnv.exitCode, 78);
  t.match(fromEnv.message, /from MAILDIRD_LIMITS_SMTP_LINE_LENGTH: "100"; allowed: an integer from 512 to 65536/);

  const file = t.testdir({ 'maildird.json': JSON.stringify({ deletionMode: 'shred' }) });
  const fromFile = await configError({ cwd: file, env: {} });
  t.equal(fromFile.key, 'deletionMode');
  t.match(fromFile.message, `from ${path.join(file, 'maildird.json')}: "shred"; allowed: one of "trash", "expunge"`);
});

t.test('a bad value in a lower layer is reported even when a flag overrides it', async (t) => {
  const cwd = t.testdir({ 'maildird.json': JSON.stringify({ listeners: { pop3: 'nope' } }) });
  const err = await configError({ cwd, env: {}, flags: { pop3: '1110' } });
  t.equal(err.key, 'listeners.pop3');
  t.match(err.message, /maildird\.json: "nope"/);
});

t.test('unknown keys in the file are refused with the allowed ones', async (t) => {
  const top = await configError({ cwd: t.testdir({ 'maildird.json': '{"listners": {}}' }), env: {} });
  t.equal(top.key, 'listners');
  t.match(top.message, /unknown key listners; allowed: root, users, layout, domains, listeners/);
  const nested = await configError({ cwd: t.testdir({ 'maildird.json': '{"limits": {"pop3Line": 300}}' }), env: {} });
  t.equal(nested.key, 'limits.pop3Line');
  t.match(nested.message, /allowed in limits: pop3LineLength, pop3IdleSeconds/);
  const scalar = await configError({ cwd: t.testdir({ 'maildird.json': '{"tls": "x"}' }), env: {} });
  t.equal(scalar.key, 'tls');
});

t.test('unreadable, missing and malformed config files', async (t) => {
  const dir = t.testdir({ 'bad.json': '{\n  "root": "x",\n  oops\n}', 'list.json': '[]', folder: {} });
  const missing = await configError({ cwd: dir, env: {}, flags: { config: 'nope.json' } });
  t.equal(missing.exitCode, 66);
  t.match(missing.message, /nope\.json: not found$/);
  const folder = await configError({ cwd: dir, env: {}, flags: { config: 'folder' } });
  t.equal(folder.exitCode, 66);
  t.match(folder.message, /is a folder$/);
  const bad = await configError({ cwd: dir, env: {}, flags: { config: 'bad.json' } });
  t.equal(bad.exitCode, 78);
  t.match(bad.message, /not valid JSON \(line 3, column 3\)/);
  const list = await configError({ cwd: dir, env: {}, flags: { config: 'list.json' } });
  t.match(list.message, /must hold a JSON object/);
  if (process.getuid?.() !== 0) {
    fs.chmodSync(path.join(dir, 'bad.json'), 0);
    const unreadable = await configError({ cwd: dir, env: {}, flags: { config: 'bad.json' } });
    t.equal(unreadable.exitCode, 66);
  }
});

t.test('cross-key rules: tls pair, implicit TLS needs a certificate, one listener per address', async (t) => {
  const cwd = t.testdir({});
  const half = await configError({ cwd, env: {}, flags: { 'tls-cert': 'c.pem' } });
  t.equal(half.key, 'tls.key');
  t.match(half.message, /tls\.cert is set but tls\.key is not/);
  const pop3s = await configError({ cwd, env: {}, flags: { pop3s: '995' } });
  t.equal(pop3s.key, 'listeners.pop3s');
  t.match(pop3s.message, /needs tls\.cert and tls\.key/);
  const same = await configError({ cwd, env: {}, flags: { pop3: '127.0.0.1:1110', smtp: '1110' } });
  t.equal(same.key, 'listeners.smtp');
  t.match(same.message, /same address as listeners\.pop3/);
  const sameReverse = await configError({ cwd, env: {}, flags: { pop3: '1110', smtp: '127.0.0.1:1110' } });
  t.equal(sameReverse.key, 'listeners.smtp');
  const ok = await loadConfig({ cwd, env: {}, flags: { pop3: '127.0.0.1:1110', smtp: '127.0.0.2:1110', http: '0', lmtp: '0' }, hostname: HOST });
  t.same(ok.listeners.smtp, { kind: 'tcp', host: '127.0.0.2', port: 1110 }, 'different hosts, same port; port 0 twice');
});

t.test('a flag given twice is a usage error', async (t) => {
  const err = await configError({ cwd: t.testdir({}), env: {}, flags: { pop3: ['1', '2'] } });
  t.equal(err.exitCode, 64);
  t.match(err.message, /--pop3 given more than once/);
});

t.test('an invalid machine host name falls back to localhost', async (t) => {
  const config = await loadConfig({ cwd: t.testdir({}), env: {}, hostname: 'bad_name!' });
  t.equal(config.hostname, 'localhost');
});
