/** `maildird config print` and `maildird config check FILE` through the built CLI, on temporary trees. */
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { effectiveConfig, MASK } from '../../../src/cli/commands/config.js';
import { loadConfig } from '../../../src/config/load.js';
import { KEYS, type KeySpec } from '../../../src/config/schema.js';
import { REPO, runCli } from '../../helpers/cli-run.js';

const TLS_CERT = path.join(REPO, 'fixtures', 'tls', 'localhost.crt');
const TLS_KEY = path.join(REPO, 'fixtures', 'tls', 'localhost.key');
const OTHER_KEY = path.join(REPO, 'fixtures', 'tls', 'selfsigned.key');

function tree(t: Test, config: Record<string, unknown>, passwd = 'alice:{PLAIN}wonder\n'): string {
  return t.testdir({ 'maildird.json': JSON.stringify(config), passwd, mail: {} });
}

t.test('print: defaults < file < env < flags, as JSON in the file shape', async (t) => {
  const dir = tree(t, { listeners: { pop3: '127.0.0.1:110', http: 8080 }, limits: { maxMessageBytes: '1M' }, hostname: 'mail.test' });
  const result = await runCli(['config', 'print', '--smtp', '2526', '--domain', 'example.org'], {
    cwd: dir,
    env: { MAILDIRD_POP3: '[::1]:1110', MAILDIRD_HTTP_ADMIN_NETWORKS: '10.0.0.0/8, 192.0.2.7' },
  });
  t.equal(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as Record<string, any>;
  t.equal(printed['root'], path.join(dir, 'mail'), 'paths absolute, from the file folder');
  t.same(printed['listeners'], {
    pop3: '[::1]:1110',
    pop3s: false,
    smtp: '*:2526',
    submission: false,
    smtps: false,
    lmtp: false,
    http: '*:8080',
  });
  t.same(printed['domains'], ['example.org']);
  t.equal(printed['limits'].maxMessageBytes, 1024 * 1024);
  t.same(printed['http'], { adminNetworks: ['10.0.0.0/8', '192.0.2.7/32'] });
  t.same(printed['tls'], { cert: null, key: null });
  t.equal(printed['trashRetentionDays'], 0);
  t.same(printed['clientConfig'], { outgoing: false, outgoingSecurity: 'auto', outgoingUsername: 'address' });
  t.equal(printed['hostname'], 'mail.test');

  // What print shows is a config file that gives the same configuration.
  writeFileSync(path.join(dir, 'printed.json'), result.stdout);
  const again = await runCli(['config', 'print', '--config', 'printed.json'], { cwd: dir });
  t.equal(again.code, 0, again.stderr);
  t.same(JSON.parse(again.stdout), printed);
});

t.test('print masks secret keys and shows the rest', async (t) => {
  const dir = tree(t, { tls: { cert: TLS_CERT, key: TLS_KEY } });
  const config = await loadConfig({ cwd: dir, env: {}, hostname: 'mail.test' });
  const keys: KeySpec[] = (KEYS as readonly KeySpec[]).map((spec) => (spec.key === 'tls.key' ? { ...spec, isSecret: true } : spec));
  const masked = effectiveConfig(config, keys) as { tls: { cert: string; key: string }; greeting: { pop3: string } };
  t.equal(masked.tls.key, MASK, 'a secret value is masked');
  t.equal(masked.tls.cert, TLS_CERT, 'other values are shown');
  t.equal(masked.greeting.pop3, 'maildird POP3 server ready');
  const unset = effectiveConfig(await loadConfig({ cwd: tree(t, {}), env: {}, hostname: 'h' }), keys) as { tls: { key: unknown } };
  t.equal(unset.tls.key, null, 'an unset secret prints as unset, not as a mask');

  // Through the CLI: no key of the schema holds secret material itself, and no file content is ever printed.
  const result = await runCli(['config', 'print'], { cwd: dir });
  t.equal(result.code, 0, result.stderr);
  t.notMatch(result.stdout, /BEGIN|PRIVATE|wonder/, 'neither key nor password content');
});

t.test('check: ok, and one line with a sysexits code for each kind of problem', async (t) => {
  const good = tree(t, { listeners: { pop3: '127.0.0.1:0' }, tls: { cert: TLS_CERT, key: TLS_KEY } });
  const ok = await runCli(['config', 'check', path.join(good, 'maildird.json')]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, `${path.join(good, 'maildird.json')}: ok\n`);

  const cases: { name: string; config?: Record<string, unknown>; file?: string; passwd?: string; code: number; message: RegExp }[] = [
    { name: 'bad value', config: { listeners: { pop3: 'pop' } }, code: 78, message: /^maildird: invalid value for listeners\.pop3 from .*maildird\.json: "pop"; allowed: / },
    { name: 'unknown key', config: { listners: {} }, code: 78, message: /^maildird: config file .*: unknown key listners; allowed: / },
    { name: 'bad network', config: { http: { adminNetworks: ['10.0.0.0/33'] } }, code: 78, message: /^maildird: invalid value for http\.adminNetworks .*"10\.0\.0\.0\/33".*CIDR/ },
    { name: 'bad retention', config: { trashRetentionDays: -1 }, code: 78, message: /^maildird: invalid value for trashRetentionDays .*-1; allowed: an integer from 0 to 36500/ },
    { name: 'not JSON', file: '{ "root": ', code: 78, message: /^maildird: config file .*: not valid JSON/ },
    { name: 'no root', config: { root: 'nope' }, code: 66, message: /^maildird: root .*nope: not found$/m },
    { name: 'broken users file', config: {}, passwd: 'alice:{PLAIN}x\nbad line without a password field\n', code: 65, message: /^maildird: users file .*line 2/ },
    { name: 'certificate and key do not match', config: { tls: { cert: TLS_CERT, key: OTHER_KEY } }, code: 78, message: /^maildird: invalid TLS certificate or key/ },
    { name: 'missing aliases file', config: { aliases: 'aliases' }, code: 66, message: /^maildird: aliases .*aliases: not found$/m },
    { name: 'broken aliases file', config: { aliases: 'maildird.json' }, code: 78, message: /^maildird: .*maildird\.json line 1: bad alias name/ },
    { name: 'pop3s without certificate', config: { listeners: { pop3s: 995 } }, code: 78, message: /^maildird: listeners\.pop3s is \*:995 but it needs tls\.cert/ },
  ];
  for (const c of cases) {
    const dir = tree(t, c.config ?? {}, c.passwd);
    if (c.file !== undefined) writeFileSync(path.join(dir, 'maildird.json'), c.file);
    const result = await runCli(['config', 'check', 'maildird.json'], { cwd: dir });
    t.equal(result.code, c.code, `${c.name}: exit code`);
    t.match(result.stderr, c.message, c.name);
    t.equal(result.stderr.split('\n').filter((line) => line !== '').length, 1, `${c.name}: one line`);
    t.equal(result.stdout, '', `${c.name}: nothing on stdout`);
  }

  const missing = await runCli(['config', 'check', 'no-such.json'], { cwd: good });
  t.equal(missing.code, 66);
  t.match(missing.stderr, /^maildird: config file .*no-such\.json: not found\n$/);
  const usage = await runCli(['config', 'check'], { cwd: good });
  t.equal(usage.code, 64, 'FILE is required');
});
