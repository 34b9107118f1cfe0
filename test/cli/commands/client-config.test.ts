/** `maildird client-config ADDRESS` through the built CLI: the settings autoconfig serves, as text. */
import t, { type Test } from 'tap';
import { runCli } from '../../helpers/cli-run.js';

const PASSWD = 'alice:{PLAIN}a\ncarol@example.org:{PLAIN}c\n';

function tree(t: Test, config: Record<string, unknown> = {}): string {
  return t.testdir({
    'maildird.json': JSON.stringify({
      hostname: 'mail.example.org',
      domains: ['example.org', 'example.net'],
      listeners: { pop3: 110, pop3s: 995, smtp: 25, submission: 587, smtps: 465 },
      tls: { cert: 'cert.pem', key: 'key.pem' },
      ...config,
    }),
    passwd: PASSWD,
    mail: {},
  });
}

t.test('servers in order of preference, security and the canonical login', async (t) => {
  const dir = tree(t);
  const result = await runCli(['client-config', 'alice@example.net'], { cwd: dir });
  t.equal(result.code, 0, result.stderr);
  t.equal(
    result.stdout,
    [
      'Mail client settings for alice@example.net',
      '',
      'Incoming mail (POP3), first choice first:',
      '  server mail.example.org, port 995',
      '    security:  SSL/TLS (implicit TLS)',
      '    user name: alice',
      '  server mail.example.org, port 110',
      '    security:  STARTTLS',
      '    user name: alice',
      '',
      'Outgoing mail (SMTP), first choice first:',
      '  server mail.example.org, port 465',
      '    security:  SSL/TLS (implicit TLS)',
      '    user name: alice',
      '  server mail.example.org, port 587',
      '    security:  STARTTLS',
      '    user name: alice',
      '',
      "Authentication: normal password (the account's password; maildird takes it inside TLS, or on loopback).",
      '',
    ].join('\n'),
  );
  const carol = await runCli(['client-config', 'carol@EXAMPLE.org'], { cwd: dir });
  t.equal(carol.code, 0, carol.stderr);
  t.equal([...carol.stdout.matchAll(/user name: (\S+)/g)].map((m) => m[1]).join(' '), Array(4).fill('carol@example.org').join(' '), 'the users file spelling');
});

t.test('a configured outgoing server, and listeners that are off', async (t) => {
  const dir = tree(t, {
    listeners: { pop3: 110 },
    tls: { cert: null, key: null },
    clientConfig: { outgoing: 'smtp.provider.test:465' },
  });
  const result = await runCli(['client-config', 'alice@example.org'], { cwd: dir });
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /Incoming mail \(POP3\), first choice first:\n {2}server mail\.example\.org, port 110\n {4}security: {2}none \(no certificate is configured\)\n {4}user name: alice\n\n/);
  t.match(result.stdout, /Outgoing mail \(SMTP\), first choice first:\n {2}server smtp\.provider\.test, port 465\n {4}security: {2}SSL\/TLS \(implicit TLS\)\n {4}user name: alice@example\.org\n/);

  const none = await runCli(['client-config', 'alice@example.org', '--pop3', 'false'], { cwd: tree(t, { listeners: { pop3: 110, smtp: 25 } }) });
  t.equal(none.code, 0, none.stderr);
  t.match(none.stdout, /first choice first:\n {2}none: no pop3 or pop3s listener/);
  t.match(none.stdout, /SMTP\), first choice first:\n {2}none: set clientConfig\.outgoing/);
});

t.test('errors: one line and a sysexits code', async (t) => {
  const dir = tree(t);
  const cases: { address: string; code: number; message: RegExp }[] = [
    { address: 'zoe@example.org', code: 67, message: /^maildird: zoe@example\.org: no such user in .*passwd\n$/ },
    { address: 'alice@elsewhere.test', code: 65, message: /^maildird: alice@elsewhere\.test: not a domain of this server \(local domains: example\.org, example\.net\)\n$/ },
    { address: 'alice', code: 65, message: /^maildird: "alice" is not an e-mail address\n$/ },
  ];
  for (const c of cases) {
    const result = await runCli(['client-config', c.address], { cwd: dir });
    t.equal(result.code, c.code, c.address);
    t.match(result.stderr, c.message, c.address);
    t.equal(result.stdout, '');
  }
  t.equal((await runCli(['client-config'], { cwd: dir })).code, 64, 'ADDRESS is required');
});
