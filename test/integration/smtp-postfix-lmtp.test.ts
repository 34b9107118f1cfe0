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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserDatabase } from '../../src/auth/user-db.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { createSmtpServer } from '../../src/smtp/server.js';
import { delivered, splitTrace } from '../helpers/smtp-setup.js';
import { missingClient, REQUIRE_INTEROP, run } from '../helpers/smtp-interop.js';
import { POSTFIX_SERVICES, postfixMainCf, readText, waitForText } from '../helpers/postfix.js';

async function reason(): Promise<string | false> {
  const missing = await missingClient('postconf', ['-d', 'mail_version']);
  if (missing !== false) return missing;
  if (process.getuid?.() !== 0 && !REQUIRE_INTEROP) return 'a private Postfix instance needs root (set MAILDIRD_REQUIRE_INTEROP=1 to fail instead)';
  return false;
}
const skip = await reason();

const MASTER_CF = `${POSTFIX_SERVICES}lmtp      unix  -       -       n       -       -       lmtp
`;

function mainCf(dir: string, lmtpPort: number): string {
  return postfixMainCf(dir, `lmtp:inet:127.0.0.1:${lmtpPort}`, 'smtp_host_lookup = native\n');
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
