/**
 * swaks against live listeners on a real Maildir tree: every fixture
 * message sent over SMTP arrives byte-correct (LF form after our two trace
 * headers) and poplib fetches it back identical to what was sent; STARTTLS
 * + AUTH on submission, SMTPS, LMTP, a relay attempt, and a smuggling
 * payload sent with --no-data-fixup.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toStoredBuffer } from '../../src/storage/wire.js';
import { createSmtpServer } from '../../src/smtp/server.js';
import { delivered, splitTrace } from '../helpers/smtp-setup.js';
import { CA_FILE, missingClient, POPLIB_FETCH, run, startSmtpInterop } from '../helpers/smtp-interop.js';

const skip = await missingClient('swaks', ['--version']);
const skipPoplib = skip !== false ? skip : await missingClient('python3', ['-c', 'import poplib']);
const MESSAGES = fileURLToPath(new URL('../../fixtures/messages/', import.meta.url));

function swaks(port: number, ...args: string[]) {
  return run('swaks', ['--server', `127.0.0.1:${port}`, '--helo', 'client.example', '--from', 'sender@remote.example', ...args]);
}

/** Lone CRs are refused by design (data-inspector.ts): those fixtures must get 550 5.6.0. */
function hasLoneCr(bytes: Buffer): boolean {
  return /\r(?!\n)/.test(bytes.toString('latin1'));
}

t.test('swaks: each fixture arrives byte-correct, and poplib reads back what was sent', { skip: skipPoplib }, async (t) => {
  const server = await startSmtpInterop(t);
  // What swaks puts on the wire (it normalises line ends), learnt from a
  // listener whose raw hook keeps the content: the library API at work.
  const captured: Buffer[] = [];
  const capture = createSmtpServer({
    store: server.store,
    users: server.users,
    localDomains: ['example.org'],
    reverseLookup: false,
    onMessage: {
      mode: 'raw',
      handle: async (_message, content) => {
        const chunks: Buffer[] = [];
        for await (const chunk of content) chunks.push(chunk as Buffer);
        captured.push(Buffer.concat(chunks));
      },
    },
  });
  t.teardown(() => capture.close());
  const address = await capture.listen({ port: 0, host: '127.0.0.1' });
  const capturePort = typeof address === 'string' ? 0 : address.port;

  const names = readdirSync(MESSAGES).filter((n) => n.endsWith('.eml')).sort();
  const sent: Buffer[] = [];
  for (const name of names) {
    const file = join(MESSAGES, name);
    const result = await swaks(server.ports.smtp, '--to', 'alice@example.org', '--data', `@${file}`);
    if (hasLoneCr(readFileSync(file))) {
      t.not(result.code, 0, `${name}: a lone CR is refused`);
      t.match(result.stdout.toString(), /<\*\* 550 5\.6\.0 /, name);
      continue;
    }
    t.equal(result.code, 0, `${name}: ${result.stderr}`);
    const before = captured.length;
    const again = await swaks(capturePort, '--to', 'alice@example.org', '--data', `@${file}`);
    t.equal(again.code, 0, again.stderr);
    t.equal(captured.length, before + 1);
    sent.push(captured[captured.length - 1] ?? Buffer.alloc(0));
  }
  t.ok(sent.length >= 7, `${sent.length} fixtures sent`);
  const files = await delivered(server.root, 'alice');
  t.equal(files.length, sent.length);
  const expected = sent.map((bytes) => toStoredBuffer(bytes).toString('latin1')).sort();
  t.same(files.map(([, b]) => splitTrace(b).rest).sort(), expected, 'stored bytes: what swaks sent, in LF form');

  const fetched = await run('python3', ['-c', POPLIB_FETCH, String(server.ports.pop3), 'alice']);
  t.equal(fetched.code, 0, fetched.stderr);
  const wire = (JSON.parse(fetched.stdout.toString()) as string[]).map((hex) => Buffer.from(hex, 'hex').toString('latin1'));
  t.equal(wire.length, sent.length);
  for (const message of wire) {
    t.match(
      message,
      /^Return-Path: <sender@remote\.example>\r\nReceived: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org with ESMTP\r\n\tid [0-9A-F]{12} for <alice@example\.org>; [^\r\n]+\r\n/,
    );
  }
  const bodies = wire.map((m) => m.split('\r\n').slice(4).join('\r\n')).sort();
  t.same(bodies, sent.map((b) => b.toString('latin1')).sort(), 'poplib gets exactly what swaks sent, plus our two headers');
});

t.test('swaks: STARTTLS + AUTH on submission, SMTPS with LOGIN and CRAM-MD5 (turned on), wrong password refused', { skip }, async (t) => {
  const server = await startSmtpInterop(t, { cramMd5: true });
  const tls = ['--tls-verify', '--tls-ca-path', CA_FILE, '--tls-sni', 'localhost'];
  const noAuth = await swaks(server.ports.submission, '--to', 'bob@example.org');
  t.not(noAuth.code, 0);
  t.match(noAuth.stdout.toString(), /<\*\* 530 5\.7\.0 Authentication required/, 'loopback may AUTH in plaintext, so: AUTH first');
  const submission = await swaks(server.ports.submission, '--to', 'bob@example.org', '-tls', ...tls, '-a', 'PLAIN', '-au', 'alice', '-ap', 'secret');
  t.equal(submission.code, 0, submission.stdout.toString());
  const smtps = await swaks(server.ports.smtps, '--to', 'bob@example.org', '--tlsc', ...tls, '-a', 'LOGIN', '-au', 'alice', '-ap', 'secret');
  t.equal(smtps.code, 0, smtps.stdout.toString());
  const cram = await swaks(server.ports.smtps, '--to', 'bob@example.org', '--tlsc', ...tls, '-a', 'CRAM-MD5', '-au', 'bob', '-ap', 'secret');
  t.equal(cram.code, 0, cram.stdout.toString());
  const wrong = await swaks(server.ports.smtps, '--to', 'bob@example.org', '--tlsc', ...tls, '-a', 'PLAIN', '-au', 'alice', '-ap', 'nope');
  t.not(wrong.code, 0);
  t.match(wrong.stdout.toString(), /<~?\* 535 5\.7\.8 /);
  const bob = await delivered(server.root, 'bob');
  t.equal(bob.length, 3);
  t.ok(bob.every(([, b]) => /with ESMTPSA \(TLSv1\.[23] /.test(splitTrace(b).received)));
});

t.test('swaks: LMTP per-recipient replies, a relay attempt, a smuggling payload', { skip }, async (t) => {
  const server = await startSmtpInterop(t);
  const lmtp = await run('swaks', [
    '--server', `127.0.0.1:${server.ports.lmtp}`, '--protocol', 'LMTP', '--from', 's@remote.example',
    '--to', 'alice@example.org,nobody@example.org,bob@example.org',
  ]);
  const out = lmtp.stdout.toString();
  t.match(out, /<\*\* 550 5\.1\.1 <nobody@example\.org>/);
  t.equal((out.match(/<- {2}250 2\.0\.0 <(alice|bob)@example\.org> Ok: delivered as/g) ?? []).length, 2, out);

  const relay = await swaks(server.ports.smtp, '--to', 'victim@remote.example');
  t.not(relay.code, 0);
  t.match(relay.stdout.toString(), /<\*\* 554 5\.7\.1 <victim@remote\.example>: Relay access denied/);

  const smuggle = await swaks(
    server.ports.smtp,
    '--to', 'alice@example.org',
    '--no-data-fixup',
    // --no-data-fixup sends these bytes as they are, the final "." included.
    '--data', 'Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<spoof@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nevil\r\n.\r\n',
  );
  t.not(smuggle.code, 0);
  t.match(smuggle.stdout.toString(), /<\*\* 550 5\.6\.0 /);
  for (const user of ['alice', 'bob']) {
    const files = await delivered(server.root, user);
    t.equal(files.length, 1, `${user}: only the LMTP message`);
    t.notMatch(files[0]?.[1].toString('latin1'), /evil|smuggle/);
  }
});
