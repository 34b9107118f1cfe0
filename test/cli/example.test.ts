import t from 'tap';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePasswdFile } from '../../src/auth/passwd-file.js';
import { schemeName, verifyPassword } from '../../src/auth/password.js';
import { EXAMPLE_CONFIG_FILE, EXAMPLE_USERS, exampleLoginLines, isExampleConfig } from '../../src/cli/example.js';
import { loadConfig } from '../../src/config/load.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const example = path.join(repo, 'maildir.example');

t.test('the documented example passwords log in against maildir.example/passwd', async (t) => {
  const file = parsePasswdFile(readFileSync(path.join(example, 'passwd')));
  t.same(file.errors, []);
  t.same(file.warnings, []);
  t.same(
    file.entries.map((e) => e.name),
    EXAMPLE_USERS.map((u) => u.name),
  );
  for (const user of EXAMPLE_USERS) {
    const entry = file.entries.find((e) => e.name === user.name);
    t.ok(entry !== undefined && (await verifyPassword(entry.password, user.password)), `${user.name}/${user.password}`);
    t.ok(entry !== undefined && !(await verifyPassword(entry.password, `${user.password}x`)), `${user.name} wrong password refused`);
  }
  const schemes = file.entries.map((e) => schemeName(e.password));
  t.same(schemes, ['ARGON2ID', 'PLAIN', 'SHA512-CRYPT'], 'default scheme, PLAIN for APOP/CRAM-MD5, SHA512-CRYPT');
  const readme = readFileSync(path.join(example, 'README.md'), 'utf8');
  for (const user of EXAMPLE_USERS) t.match(readme, `| \`${user.name}\` | \`${user.password}\` |`, `README documents ${user.name}`);
});

t.test('maildir.example/maildird.json is the npm start row of DESIGN.md', async (t) => {
  t.equal(EXAMPLE_CONFIG_FILE, path.join(example, 'maildird.json'));
  const config = await loadConfig({ cwd: repo, flags: { config: 'maildir.example/maildird.json' }, env: {} });
  t.ok(isExampleConfig(config.configFile));
  t.equal(config.root, path.join(example, 'mail'));
  t.equal(config.users, path.join(example, 'passwd'));
  const ports = Object.fromEntries(
    Object.entries(config.listeners).map(([name, address]) => [name, address !== false && address.kind === 'tcp' ? `${address.host}:${address.port}` : address]),
  );
  t.same(ports, {
    pop3: '127.0.0.1:1110',
    pop3s: '127.0.0.1:1995',
    smtp: '127.0.0.1:2525',
    submission: '127.0.0.1:1587',
    smtps: '127.0.0.1:1465',
    lmtp: '127.0.0.1:2424',
    http: '127.0.0.1:8080',
  });
  t.same(config.tls, { cert: path.join(example, 'demo-cert.pem'), key: path.join(example, 'demo-key.pem') });
  t.match(readFileSync(config.tls.cert ?? '', 'utf8'), /^DEMO ONLY/);
  t.match(readFileSync(config.tls.key ?? '', 'utf8'), /^DEMO ONLY/);
  t.notOk(isExampleConfig(path.join(repo, 'maildird.json')));
  t.notOk(isExampleConfig(undefined));
});

t.test('login hints name only the listeners that are up', async (t) => {
  const none = exampleLoginLines([]).join('\n');
  t.match(none, /alice +password wonderland/);
  t.notMatch(none, /curl/);
  const pop3 = exampleLoginLines([
    { name: 'pop3', address: '127.0.0.1:1110' },
    { name: 'pop3s', address: '127.0.0.1:1995' },
  ]).join('\n');
  t.match(pop3, 'curl pop3://alice:wonderland@127.0.0.1:1110/ ', 'no CRAM-MD5 by default: curl needs no options');
  t.match(pop3, 'curl pop3://bob:builder@127.0.0.1:1110/     (bob logs in with PLAIN)');
  t.match(pop3, 'MAILDIRD_CRAM_MD5=true npm start');
  t.match(pop3, 'pop3s://bob:builder@localhost:1995/');
  t.notMatch(pop3, /swaks/);
  const cram = exampleLoginLines([{ name: 'pop3', address: '127.0.0.1:1110' }], { cramMd5: true, apop: false }).join('\n');
  t.match(cram, 'curl --login-options AUTH=PLAIN pop3://alice:wonderland@127.0.0.1:1110/', 'with CRAM-MD5 on, hashed passwords ask for PLAIN');
  t.match(cram, '(bob logs in with CRAM-MD5)');
  t.notMatch(cram, /MAILDIRD_CRAM_MD5/);
});
