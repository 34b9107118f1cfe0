import t from 'tap';
import { KEYS, envName, type KeySpec } from '../../src/config/schema.js';
import { coerce } from '../../src/config/validate.js';

const keys = KEYS as readonly KeySpec[];

t.test('environment names: MAILDIRD_ + flag (or key) in upper snake case', async (t) => {
  t.equal(envName({ key: 'tls.cert', flag: 'tls-cert' }), 'MAILDIRD_TLS_CERT');
  t.equal(envName({ key: 'logLevel', flag: 'log-level' }), 'MAILDIRD_LOG_LEVEL');
  t.equal(envName({ key: 'listeners.pop3', flag: 'pop3' }), 'MAILDIRD_POP3');
  t.equal(envName({ key: 'limits.pop3LineLength' }), 'MAILDIRD_LIMITS_POP3_LINE_LENGTH');
  t.equal(envName({ key: 'caseInsensitiveUsers' }), 'MAILDIRD_CASE_INSENSITIVE_USERS');
});

t.test('keys, flags and environment names are unique', async (t) => {
  const unique = (list: readonly unknown[]) => new Set(list).size === list.length;
  t.ok(unique(keys.map((s) => s.key)));
  t.ok(unique(keys.filter((s) => s.flag !== undefined).map((s) => s.flag)));
  t.ok(unique(keys.map(envName)));
});

t.test('the contract flags of `maildird serve` are all here', async (t) => {
  const flags = keys.map((s) => s.flag).filter((f) => f !== undefined);
  const contract = ['root', 'users', 'pop3', 'pop3s', 'smtp', 'submission', 'smtps', 'lmtp', 'http', 'tls-cert', 'tls-key', 'domain', 'log-level', 'workers'];
  t.same([...flags].sort(), [...contract].sort());
});

t.test('every key is documented and its default validates', async (t) => {
  for (const spec of keys) {
    t.ok(spec.doc.length > 10, `${spec.key} has a doc line`);
    if (spec.key === 'hostname') continue; // filled from the machine at load time
    t.doesNotThrow(() => coerce(spec, spec.default, { label: 'the defaults', baseDir: '/', exitCode: 78 }), spec.key);
  }
});

t.test('README.md documents every key with its flag and environment variable', async (t) => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const spec of keys) {
    const flag = spec.flag === undefined ? '  ' : ` \`--${spec.flag}\` `;
    t.match(readme, `| \`${spec.key}\` |${flag}| \`${envName(spec)}\` |`, spec.key);
  }
});
