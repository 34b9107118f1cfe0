/**
 * Postfix (a private instance, ../shared/PEERS.md) hands mail to maildird
 * over LMTP: the per-recipient replies reach Postfix (its log says sent /
 * bounced per recipient, with our codes and "in reply to RCPT TO" or "end
 * of DATA"), and the messages land in the Maildirs. Mail is injected with
 * Postfix's own sendmail(1) into the private instance.
 *
 * Needs root (Postfix's master runs as root and drops to `postfix`) and
 * the postfix package; skipped with the reason otherwise, unless
 * MAILDIRD_REQUIRE_INTEROP=1.
 */
import t from 'tap';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { watch } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserDatabase } from '../../src/auth/user-db.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { createSmtpServer } from '../../src/smtp/server.js';
import { delivered, splitTrace } from '../helpers/smtp-setup.js';
import { missingClient, REQUIRE_INTEROP, run } from '../helpers/smtp-interop.js';

async function reason(): Promise<string | false> {
  const missing = await missingClient('postconf', ['-d', 'mail_version']);
  if (missing !== false) return missing;
  if (process.getuid?.() !== 0 && !REQUIRE_INTEROP) return 'a private Postfix instance needs root (set MAILDIRD_REQUIRE_INTEROP=1 to fail instead)';
  return false;
}
const skip = await reason();

const MASTER_CF = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

function mainCf(dir: string, lmtpPort: number): string {
  return `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = relay.test
mydestination =
local_transport = error:no local delivery here
virtual_mailbox_domains = example.org
virtual_transport = lmtp:inet:127.0.0.1:${lmtpPort}
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
smtp_host_lookup = native
in_flow_delay = 0
biff = no
`;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Resolves once the file's text satisfies `done` (fs.watch events, no polling); bounded by tap's timeout. */
async function waitForText(dir: string, file: string, done: (text: string) => boolean): Promise<string> {
  const read = (): string => readText(join(dir, file));
  let text = read();
  if (done(text)) return text;
  const stop = new AbortController();
  try {
    for await (const _event of watch(dir, { signal: stop.signal })) {
      text = read();
      if (done(text)) return text;
    }
  } finally {
    stop.abort();
  }
  return text;
}

t.test('Postfix relays into maildird over LMTP: per-recipient replies reach it, messages land', { skip }, async (t) => {
  // Under the system temp folder (queue socket paths must stay short), and
  // traversable by the postfix user.
  const dir = mkdtempSync(join(tmpdir(), 'maildird-pf-'));
  chmodSync(dir, 0o755);
  const root = join(dir, 'mail');
  mkdirSync(root);
  const store = await MaildirStore.open({ root });
  const users = UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}x' },
      { name: 'bob', password: '{PLAIN}x' },
      { name: 'tiny', password: '{PLAIN}x', extraFields: [{ key: 'userdb_quota_rule', value: '*:storage=1K' }] },
    ],
    { localDomains: ['example.org'] },
  );
  const server = createSmtpServer({ store, users, localDomains: ['example.org'], lmtp: true, authOffered: 'never', reverseLookup: false, hostname: 'mx.test' });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  const port = typeof address === 'string' ? 0 : address.port;

  const conf = join(dir, 'conf');
  mkdirSync(conf);
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'data'));
  chownSync(join(dir, 'data'), Number((await run('id', ['-u', 'postfix'])).stdout.toString().trim()), 0);
  writeFileSync(join(conf, 'main.cf'), mainCf(dir, port));
  writeFileSync(join(conf, 'master.cf'), MASTER_CF);
  t.teardown(async () => {
    await run('postfix', ['-c', conf, 'stop']);
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = await run('postfix', ['-c', conf, 'start']);
  if (start.code !== 0) {
    t.fail(`postfix did not start: ${start.stderr} ${readText(join(dir, 'maillog'))}`);
    return;
  }

  // Over tiny's 1 KiB quota; lines under Postfix's 998-octet limit so it does not fold them.
  const text = `${'x'.repeat(99)}\n`.repeat(30);
  const body = `Subject: via Postfix\n\n${text}`;
  const injected = await run(
    'sendmail',
    ['-C', conf, '-f', 'sender@remote.example', '--', 'alice@example.org', 'nobody@example.org', 'bob@example.org', 'tiny@example.org'],
    { input: body },
  );
  t.equal(injected.code, 0, injected.stderr);

  const log = await waitForText(dir, 'maillog', (text) => ['alice', 'bob', 'nobody', 'tiny'].every((u) => new RegExp(`to=<${u}@example\\.org>.*status=(sent|bounced)`).test(text)));
  const status = (user: string): string => new RegExp(`to=<${user}@example\\.org>.*status=(sent|bounced) \\((.*)\\)$`, 'm').exec(log)?.slice(1).join(' ') ?? '';
  t.match(status('alice'), /^sent 250 2\.0\.0 <alice@example\.org> Ok: delivered as [0-9A-F]{12}$/);
  t.match(status('bob'), /^sent 250 2\.0\.0 <bob@example\.org> Ok: delivered as [0-9A-F]{12}$/);
  t.match(status('nobody'), /^bounced host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 <nobody@example\.org>: .* \(in reply to RCPT TO command\)$/);
  t.match(status('tiny'), /^bounced host 127\.0\.0\.1\[127\.0\.0\.1\] said: 552 5\.2\.2 Mailbox full \(in reply to end of DATA command\)$/);

  for (const user of ['alice', 'bob']) {
    const files = await delivered(root, user);
    t.equal(files.length, 1, `${user} has the message`);
    const trace = splitTrace(files[0]?.[1] ?? Buffer.alloc(0));
    t.equal(trace.returnPath, 'Return-Path: <sender@remote.example>');
    t.match(trace.received, /^Received: from relay\.test \(localhost \[127\.0\.0\.1\]\)\n\tby mx\.test with LMTP\n|^Received: from relay\.test \(\[127\.0\.0\.1\]\)\n\tby mx\.test with LMTP\n/);
    t.match(trace.rest, /^Received: by relay\.test \(Postfix/, "Postfix's own trace follows ours");
    t.match(trace.rest, /\nSubject: via Postfix\n/);
    t.ok(trace.rest.endsWith(`\n\n${text}`), 'the body arrived whole');
  }
  t.same(await delivered(root, 'tiny'), []);
});
