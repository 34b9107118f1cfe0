/**
 * curl's SMTP client against live listeners on a real Maildir tree:
 * smtp:// upload byte-correct (CRLF files as they are; LF files with
 * --crlf), STARTTLS with --ssl-reqd and AUTH on submission, smtps://,
 * several recipients with one unknown, and what curl does with an LF file
 * holding a line that is only "." (it sends <LF>.<LF> unescaped: refused).
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toStoredBuffer } from '../../src/storage/wire.js';
import { delivered, splitTrace } from '../helpers/smtp-setup.js';
import { CA_FILE, missingClient, POPLIB_FETCH, run, startSmtpInterop } from '../helpers/smtp-interop.js';

const skip = await missingClient('curl', ['--version']);
const skipPoplib = skip !== false ? skip : await missingClient('python3', ['-c', 'import poplib']);
const MESSAGES = fileURLToPath(new URL('../../fixtures/messages/', import.meta.url));

function curl(url: string, file: string, ...extra: string[]) {
  return run('curl', ['--silent', '--show-error', '--mail-from', 'sender@remote.example', '--upload-file', file, ...extra, url]);
}

t.test('curl smtp://: CRLF and LF (--crlf) messages arrive byte-correct, and poplib reads back what was sent', { skip: skipPoplib }, async (t) => {
  const server = await startSmtpInterop(t);
  const url = `smtp://127.0.0.1:${server.ports.smtp}/client.example`;
  const crlf = join(MESSAGES, 'crlf-stored.eml');
  const lf = join(MESSAGES, 'dot-lines.eml');
  const a = await curl(url, crlf, '--mail-rcpt', 'alice@example.org');
  t.equal(a.code, 0, a.stderr);
  const b = await curl(url, lf, '--crlf', '--mail-rcpt', 'alice@example.org');
  t.equal(b.code, 0, b.stderr);
  const stored = (await delivered(server.root, 'alice')).map(([, bytes]) => bytes);
  t.equal(stored.length, 2);
  const rest = stored.map((bytes) => splitTrace(bytes).rest).sort();
  const expected = [crlf, lf].map((f) => toStoredBuffer(readFileSync(f)).toString('latin1')).sort();
  t.same(rest, expected, 'dot lines survive curl stuffing and our unstuffing');
  t.match(splitTrace(stored[0] ?? Buffer.alloc(0)).received, /^Received: from client\.example \(\[127\.0\.0\.1\]\)\n\tby mx\.example\.org with ESMTP\n/);

  // What curl sent: the CRLF file as it is, the LF file with CRLF line ends (--crlf).
  const sent = [readFileSync(crlf), Buffer.from(readFileSync(lf).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')];
  const fetched = await run('python3', ['-c', POPLIB_FETCH, String(server.ports.pop3), 'alice']);
  t.equal(fetched.code, 0, fetched.stderr);
  const wire = (JSON.parse(fetched.stdout.toString()) as string[]).map((hex) => Buffer.from(hex, 'hex').toString('latin1'));
  t.equal(wire.length, 2);
  for (const message of wire) t.match(message, /^Return-Path: <sender@remote\.example>\r\nReceived: from client\.example /);
  const bodies = wire.map((m) => m.split('\r\n').slice(4).join('\r\n')).sort();
  t.same(bodies, sent.map((b) => b.toString('latin1')).sort(), 'poplib gets exactly what curl sent, plus our two headers');
});

t.test('curl: STARTTLS (--ssl-reqd) with AUTH on submission, smtps://, recipients with one unknown', { skip }, async (t) => {
  const server = await startSmtpInterop(t);
  const file = join(MESSAGES, 'lf-plain.eml');
  // --crlf: curl ends LF files with a CRLF of its own otherwise (an extra blank line).
  const auth = ['--crlf', '--user', 'alice:secret', '--cacert', CA_FILE];
  const noAuth = await curl(`smtp://localhost:${server.ports.submission}/client.example`, file, '--ssl-reqd', '--cacert', CA_FILE, '--mail-rcpt', 'bob@example.org');
  t.not(noAuth.code, 0, 'submission without AUTH is refused');
  const sub = await curl(`smtp://localhost:${server.ports.submission}/client.example`, file, '--ssl-reqd', ...auth, '--mail-rcpt', 'bob@example.org');
  t.equal(sub.code, 0, sub.stderr);
  const smtps = await curl(`smtps://localhost:${server.ports.smtps}/client.example`, file, ...auth, '--mail-rcpt', 'bob@example.org');
  t.equal(smtps.code, 0, smtps.stderr);
  const bob = await delivered(server.root, 'bob');
  t.equal(bob.length, 2);
  t.ok(bob.every(([, b]) => /with ESMTPSA \(TLSv1\.[23] /.test(splitTrace(b).received)));
  t.ok(bob.every(([, b]) => splitTrace(b).rest === toStoredBuffer(readFileSync(file)).toString('latin1')));

  const mixed = await curl(
    `smtp://127.0.0.1:${server.ports.smtp}/client.example`,
    file,
    '--crlf',
    '--mail-rcpt', 'alice@example.org',
    '--mail-rcpt', 'nobody@example.org',
  );
  t.not(mixed.code, 0, 'curl gives up on the unknown recipient');
  t.match(mixed.stderr, /550/);
  t.same(await delivered(server.root, 'alice'), [], 'and sends nothing');
  const allowFails = await curl(
    `smtp://127.0.0.1:${server.ports.smtp}/client.example`,
    file,
    '--mail-rcpt', 'alice@example.org',
    '--mail-rcpt', 'nobody@example.org',
    '--crlf',
    '--mail-rcpt-allowfails',
  );
  t.equal(allowFails.code, 0, allowFails.stderr);
  t.equal((await delivered(server.root, 'alice')).length, 1, 'with --mail-rcpt-allowfails the known one gets it');
});

t.test('curl with an LF file holding a "." line sends <LF>.<LF> unescaped: refused, nothing stored', { skip }, async (t) => {
  const server = await startSmtpInterop(t);
  const file = join(t.testdir({}), 'dot.eml');
  writeFileSync(file, 'Subject: dot\n\nbefore\n.\nMAIL FROM:<spoof@example.org>\nafter\n');
  const result = await curl(`smtp://127.0.0.1:${server.ports.smtp}/client.example`, file, '--verbose', '--mail-rcpt', 'alice@example.org');
  t.equal(result.code, 8, 'curl calls any refusal after DATA a "weird server reply"');
  t.match(result.stderr, /^< 550 5\.6\.0 A line holding only "\." next to a bare <LF>/m);
  t.same(await delivered(server.root, 'alice'), []);
});

t.test('curl AUTH with a hashed password: works with CRAM-MD5 off (the default); with it on, curl picks it and fails', { skip }, async (t) => {
  const { UserDatabase } = await import('../../src/auth/user-db.js');
  const users = () =>
    UserDatabase.fromEntries(
      [
        { name: 'alice', password: '{PLAIN}secret' }, // a PLAIN secret exists, so CRAM-MD5 could be offered
        { name: 'dave', password: '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE' }, // "secret", hashed
      ],
      { localDomains: ['example.org'] },
    );
  const file = join(MESSAGES, 'lf-plain.eml');
  const send = (port: number) =>
    curl(`smtps://localhost:${port}/client.example`, file, '--crlf', '--user', 'dave:secret', '--cacert', CA_FILE, '--mail-rcpt', 'alice@example.org', '--verbose');
  const off = await startSmtpInterop(t, { users: users() });
  const ok = await send(off.ports.smtps);
  t.equal(ok.code, 0, ok.stderr);
  t.notMatch(ok.stderr, /CRAM-MD5/, 'not offered, not tried');
  const on = await startSmtpInterop(t, { users: users(), cramMd5: true });
  const fails = await send(on.ports.smtps);
  t.not(fails.code, 0, 'curl takes CRAM-MD5 when offered; a hashed password cannot answer it');
  t.match(fails.stderr, /AUTH CRAM-MD5/);
});
