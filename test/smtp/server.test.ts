import t from 'tap';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { SmtpReplyError } from '../../src/errors.js';
import { LoginThrottle } from '../../src/auth/throttle.js';
import { MemoryStore } from '../../src/storage/memory-store.js';
import { UserDatabase } from '../../src/auth/user-db.js';
import { join } from 'node:path';
import { codeOf, SmtpTestClient } from '../helpers/smtp-client.js';
import { delivered, startSmtp, splitTrace, testUsers } from '../helpers/smtp-setup.js';
import { createSmtpServer } from '../../src/smtp/server.js';
import { captureLog } from '../helpers/log-capture.js';

const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
const tlsPair = {
  cert: readFileSync(new URL('localhost.crt', TLS_DIR)),
  key: readFileSync(new URL('localhost.key', TLS_DIR)),
};
const clientTls: ConnectionOptions = { ca: readFileSync(new URL('ca.crt', TLS_DIR)), servername: 'localhost' };
/** A client that is not on this host, as a PROXY header (RFC-less HAProxy v1) says. */
const REMOTE = 'PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

async function sendMessage(c: SmtpTestClient, from: string, rcpts: string[], body: string): Promise<string[]> {
  const out = [codeOf(await c.command(`MAIL FROM:<${from}>`))];
  for (const r of rcpts) out.push(codeOf(await c.command(`RCPT TO:<${r}>`)));
  out.push(String((await c.command('DATA')).code));
  c.write(body);
  out.push(codeOf(await c.reply()));
  return out;
}

t.test('greeting, EHLO extensions, a message lands in new/ with trace headers', async (t) => {
  const h = await startSmtp(t, { banner: 'test banner' });
  const c = await h.connect();
  t.equal(c.greeting?.raw, '220 mx.example.org ESMTP test banner\r\n', 'greeting carries no enhanced code (RFC 2034)');
  const { reply, extensions } = await c.ehlo('client.example');
  t.equal(reply.code, 250);
  t.match(reply.lines[0], /^mx\.example\.org /);
  for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'SIZE 26214400']) {
    t.ok(extensions.includes(ext), `offers ${ext}`);
  }
  t.notOk(extensions.includes('STARTTLS'), 'no STARTTLS without a certificate');
  t.notOk(extensions.includes('DSN'));
  t.ok(extensions.includes('AUTH PLAIN LOGIN'), 'AUTH on loopback; no CRAM-MD5 unless turned on, though users have PLAIN secrets');
  t.equal(codeOf(await c.command('MAIL FROM:<sender@remote.example>')), '250 2.1.0');
  t.equal(codeOf(await c.command('RCPT TO:<alice@example.org>')), '250 2.1.5');
  t.equal((await c.command('DATA')).code, 354);
  c.write('Subject: hello\r\nFrom: sender@remote.example\r\n\r\nbody line\r\n..dot line\r\n.\r\n');
  const done = await c.reply();
  t.match(done.text, /^2\.0\.0 Ok: queued as [0-9A-F]{12}$/);
  const queueId = done.text.split(' ').pop() ?? '';
  t.equal(codeOf(await c.quit()), '221 2.0.0');

  const files = await delivered(h.root ?? '', 'alice');
  t.equal(files.length, 1, 'one file in new/');
  const [name, bytes] = files[0] ?? ['', Buffer.alloc(0)];
  t.match(name, /,S=\d+,W=\d+$/);
  const trace = splitTrace(bytes);
  t.equal(trace.returnPath, 'Return-Path: <sender@remote.example>');
  t.match(
    trace.received,
    new RegExp(
      `^Received: from client\\.example \\(\\[127\\.0\\.0\\.1\\]\\)\\n\\tby mx\\.example\\.org with ESMTP\\n\\tid ${queueId} for <alice@example\\.org>; \\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000$`,
    ),
  );
  t.equal(trace.rest, 'Subject: hello\nFrom: sender@remote.example\n\nbody line\n.dot line\n', 'stored with LF, dot-unstuffed');
});

t.test('a pipelined session: replies in order, one copy per user, a second transaction', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  c.write(
    'MAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<alice+news@example.org>\r\n' +
      'RCPT TO:<bob@EXAMPLE.org>\r\nDATA\r\nSubject: one\r\n\r\nfirst\r\n.\r\n' +
      'MAIL FROM:<x@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n',
  );
  const replies = (await c.replies(12)).map(codeOf);
  t.same(replies, [
    '250 2.1.0',
    '250 2.1.5',
    '550 5.1.1',
    '250 2.1.5',
    '250 2.1.5',
    '354',
    '250 2.0.0',
    '250 2.1.0',
    '250 2.1.5',
    '354',
    '250 2.0.0',
    '221 2.0.0',
  ]);
  await c.closed();
  const alice = await delivered(h.root ?? '', 'alice');
  const bob = await delivered(h.root ?? '', 'bob');
  t.equal(alice.length, 1, 'alice and alice+news share one copy');
  t.match(splitTrace(alice[0]?.[1] ?? Buffer.alloc(0)).received, /for <alice@example\.org>;/, 'traced for the first RCPT');
  t.equal(splitTrace(alice[0]?.[1] ?? Buffer.alloc(0)).returnPath, 'Return-Path: <>', 'null sender');
  t.same(
    bob.map(([, b]) => splitTrace(b).rest).sort(),
    ['Subject: one\n\nfirst\n', 'Subject: two\n\nsecond\n'],
  );
});

t.test('commands: HELP, VRFY without enumeration, obsolete and joke commands refused', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  const help = await c.command('HELP');
  t.equal(help.code, 214);
  t.same(help.lines, ['2.0.0 Commands:', '2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY AUTH', '2.0.0 See RFC 5321']);
  const known = await c.command('VRFY alice');
  const unknown = await c.command('VRFY nobody-at-all');
  t.equal(codeOf(known), '252 2.5.0');
  t.equal(known.text, unknown.text, 'VRFY says the same for users and non-users');
  t.equal(codeOf(await c.command('VRFY')), '501 5.5.4');
  for (const verb of ['EXPN staff', 'TURN', 'ETRN example.org', 'SEND FROM:<a@b.example>', 'SOML FROM:<a@b.example>', 'SAML FROM:<a@b.example>', 'BDAT 10 LAST']) {
    t.equal(codeOf(await c.command(verb)), '502 5.5.1', verb);
  }
  t.equal(codeOf(await c.command('WIZ secret')), '500 5.5.2', 'no wizard mode');
  t.equal(codeOf(await c.command('XCLIENT ADDR=192.0.2.1')), '500 5.5.2', 'no XCLIENT');
  t.equal(codeOf(await c.command('NOOP')), '250 2.0.0');
  t.equal(codeOf(await c.command('RSET')), '250 2.0.0');
  t.equal(codeOf(await c.command('RCPT TO:<alice@example.org>')), '503 5.5.1', 'RCPT before MAIL');
  t.equal(codeOf(await c.command('DATA')), '503 5.5.1', 'DATA before RCPT');
  t.equal(codeOf(await c.command('MAIL FROM:<a b@x>')), '501 5.1.7');
  const http = await c.command('GET / HTTP/1.1');
  t.equal(http.code, 421, 'an HTTP request (a browser attack) is cut off');
  await c.closed();
});

t.test('size limits: declared SIZE and the real size get 552 5.3.4, nothing is written', async (t) => {
  const h = await startSmtp(t, { limits: { maxMessageBytes: 100 } });
  const c = await h.connect();
  const { extensions } = await c.ehlo();
  t.ok(extensions.includes('SIZE 100'));
  t.equal(codeOf(await c.command('MAIL FROM:<a@remote.example> SIZE=101')), '552 5.3.4');
  t.equal(codeOf(await c.command('MAIL FROM:<a@remote.example> SIZE=100')), '250 2.1.0');
  await c.command('RCPT TO:<alice@example.org>');
  await c.command('DATA');
  c.write(`Subject: big\r\n\r\n${'x'.repeat(200)}\r\n.\r\nNOOP\r\n`);
  t.equal(codeOf(await c.reply()), '552 5.3.4');
  t.equal(codeOf(await c.reply()), '250 2.0.0', 'the session goes on');
  t.same(await delivered(h.root ?? '', 'alice'), []);
  t.same(
    await sendMessage(c, 'a@remote.example', ['alice@example.org'], `Subject: ok\r\n\r\n${'x'.repeat(70)}\r\n.\r\n`),
    ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0'],
    'exactly at the limit (100 octets with CRLFs) is fine',
  );
});

t.test('STARTTLS with the test pair; command injection after STARTTLS is discarded', async (t) => {
  const h = await startSmtp(t, { tls: tlsPair, proxyProtocol: true });
  const c = await h.connect({ preamble: REMOTE });
  const before = await c.ehlo();
  t.ok(before.extensions.includes('STARTTLS'));
  t.notOk(
    before.extensions.some((e) => e.startsWith('AUTH')),
    'no AUTH in plaintext for a client that is not on this host',
  );
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)), '538 5.7.11', 'AUTH before TLS: say why');
  // Plaintext pipelined behind STARTTLS must never run inside the TLS session.
  c.write('STARTTLS\r\nMAIL FROM:<evil@remote.example>\r\nRCPT TO:<alice@example.org>\r\n');
  t.equal(codeOf(await c.reply()), '220 2.0.0');
  await c.upgrade(clientTls);
  const after = await c.ehlo('client.example');
  t.match(after.reply.lines[0], /^mx\.example\.org/, 'the first reply in TLS is the EHLO reply: nothing injected ran');
  t.notOk(after.extensions.includes('STARTTLS'));
  t.ok(after.extensions.includes('AUTH PLAIN LOGIN'), 'AUTH offered once encrypted');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)), '235 2.7.0');
  t.same(
    await sendMessage(c, 'alice@example.org', ['bob@example.org'], 'Subject: tls\r\n\r\nsecret\r\n.\r\n'),
    ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0'],
    'MAIL is not "nested": the injected MAIL never ran',
  );
  await c.quit();
  const bob = await delivered(h.root ?? '', 'bob');
  t.equal(bob.length, 1);
  t.match(
    splitTrace(bob[0]?.[1] ?? Buffer.alloc(0)).received,
    /^Received: from client\.example \(\[203\.0\.113\.7\]\)\n\tby mx\.example\.org with ESMTPSA \(TLSv1\.[23] [A-Z0-9_-]+\)\n/,
  );
});

t.test('AUTH: PLAIN, LOGIN and CRAM-MD5 through the user database; failures get 535 5.7.8', async (t) => {
  const { lines, logger } = captureLog('trace');
  // Failures are free here; the slowdown has its own test below.
  const h = await startSmtp(t, { logger, throttle: new LoginThrottle({ freeFailures: 100 }), cramMd5: true });
  const c = await h.connect();
  t.ok((await c.ehlo()).extensions.includes('AUTH PLAIN LOGIN CRAM-MD5'), 'CRAM-MD5 turned on: offered, since users have PLAIN secrets');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0alice\0wrong-password')}`)), '535 5.7.8');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0nobody\0alice-secret')}`)), '535 5.7.8', 'unknown user: same answer');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('bob\0alice\0alice-secret')}`)), '535 5.7.8', 'no proxy authorization');
  t.equal(codeOf(await c.command('AUTH DIGEST-MD5')), '504 5.5.4');
  t.equal((await c.command('AUTH LOGIN')).code, 334);
  t.equal((await c.command(b64('ALICE'))).code, 334);
  t.equal(codeOf(await c.command(b64('alice-secret'))), '535 5.7.8', 'names are case-sensitive unless configured');
  t.equal((await c.command('AUTH LOGIN')).code, 334);
  t.equal((await c.command(b64('alice'))).code, 334);
  t.equal(codeOf(await c.command(b64('alice-secret'))), '235 2.7.0');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0bob\0bob-secret')}`)), '503 5.5.1', 'no identity change');
  await c.quit();

  const d = await h.connect();
  await d.ehlo();
  const challenge = await d.command('AUTH CRAM-MD5');
  t.equal(challenge.code, 334);
  const text = Buffer.from(challenge.text, 'base64').toString('latin1');
  t.match(text, /^<[0-9a-f]+\.\d+@mx\.example\.org>$/);
  const digest = createHmac('md5', 'bob-secret').update(text).digest('hex');
  t.equal(codeOf(await d.command(b64(`bob ${digest}`))), '235 2.7.0');
  await d.quit();

  const wire = JSON.stringify(lines);
  for (const secret of ['alice-secret', b64('alice-secret'), b64('\0alice\0alice-secret'), 'wrong-password']) {
    t.notOk(wire.includes(secret), `the trace never holds ${secret}`);
  }
  t.ok(lines.some((l) => l['msg'] === 'C: AUTH PLAIN /* secured */' && l['level'] === 20), 'AUTH lines are traced, masked');
  t.ok(lines.some((l) => l['msg'] === 'login' && l['user'] === 'alice'), 'logins at info');
});

t.test('CRAM-MD5 off by default: not in EHLO, AUTH CRAM-MD5 refused, though bob has a PLAIN secret', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  const { extensions } = await c.ehlo();
  t.same(extensions.filter((e) => e.startsWith('AUTH')), ['AUTH PLAIN LOGIN']);
  t.equal(codeOf(await c.command('AUTH CRAM-MD5')), '504 5.5.4');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0bob\0bob-secret')}`)), '235 2.7.0');
  await c.quit();
});

t.test('CRAM-MD5 turned on but no PLAIN secrets: not offered; hashed passwords still work for PLAIN', async (t) => {
  const users = UserDatabase.fromEntries([{ name: 'alice', password: '{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=' }], {
    localDomains: ['example.org'],
  });
  const h = await startSmtp(t, { users, cramMd5: true });
  const c = await h.connect();
  const { extensions } = await c.ehlo();
  t.ok(extensions.includes('AUTH PLAIN LOGIN'));
  t.equal(codeOf(await c.command('AUTH CRAM-MD5')), '504 5.5.4');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)), '235 2.7.0');
  await c.quit();
});

t.test('failed logins slow the next attempt down (the throttle POP3 shares), served before the check', async (t) => {
  const throttle = new LoginThrottle({ freeFailures: 1, baseDelayMs: 1000 });
  const h = await startSmtp(t, { throttle });
  const c = await h.connect();
  await c.ehlo();
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0alice\0wrong')}`)), '535 5.7.8', 'the first failure is free');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0alice\0wrong')}`)), '535 5.7.8');
  c.write(`AUTH PLAIN ${b64('\0alice\0alice-secret')}\r\n`);
  await h.timers.running('auth-delay');
  t.same(h.timers.pending('auth-delay'), [1000], 'the right password waits too: the delay comes before the check');
  h.timers.fire('auth-delay');
  t.equal(codeOf(await c.reply()), '235 2.7.0');
  t.equal(throttle.attemptDelayMs('127.0.0.1', 'alice'), 0, 'a success clears the record');
  await c.quit();
});

t.test('requireAuth (submission): 530 5.7.0 before AUTH; plaintext remote clients must STARTTLS first', async (t) => {
  const h = await startSmtp(t, { tls: tlsPair, requireAuth: true, proxyProtocol: true });
  const local = await h.connect({ preamble: 'PROXY TCP4 127.0.0.1 127.0.0.1 40000 587\r\n' });
  await local.ehlo();
  t.equal(codeOf(await local.command('MAIL FROM:<alice@example.org>')), '530 5.7.0');
  t.match((await local.command('RCPT TO:<alice@example.org>')).text, /^5\.7\.0 /);
  t.equal(codeOf(await local.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)), '235 2.7.0', 'loopback may AUTH in plaintext');
  t.equal(codeOf(await local.command('MAIL FROM:<alice@example.org>')), '250 2.1.0');
  await local.quit();

  const remote = await h.connect({ preamble: REMOTE });
  await remote.ehlo();
  const refused = await remote.command('MAIL FROM:<alice@example.org>');
  t.equal(codeOf(refused), '530 5.7.0');
  t.equal(refused.text, '5.7.0 Must issue a STARTTLS command first');
  await remote.startTls(clientTls);
  await remote.ehlo();
  t.equal(codeOf(await remote.command('MAIL FROM:<alice@example.org>')), '530 5.7.0');
  t.equal(codeOf(await remote.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)), '235 2.7.0');
  t.same(
    await sendMessage(remote, 'alice@example.org', ['bob@example.org'], 'Subject: sub\r\n\r\nx\r\n.\r\n'),
    ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0'],
  );
  t.equal(codeOf(await remote.command('RCPT TO:<someone@remote.example>')), '503 5.5.1');
  await remote.command('MAIL FROM:<alice@example.org>');
  t.equal(codeOf(await remote.command('RCPT TO:<someone@remote.example>')), '554 5.7.1', 'authenticated is still no relay');
  await remote.quit();
});

t.test('SMTPS (implicit TLS): TLS from the first byte, AUTH required', async (t) => {
  const h = await startSmtp(t, { tls: tlsPair, implicitTls: true, requireAuth: true });
  const c = await h.connect({ tls: clientTls });
  t.equal(c.greeting?.code, 220);
  const { extensions } = await c.ehlo();
  t.notOk(extensions.includes('STARTTLS'));
  t.ok(extensions.includes('AUTH PLAIN LOGIN'));
  t.equal(codeOf(await c.command('MAIL FROM:<a@example.org>')), '530 5.7.0');
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0bob\0bob-secret')}`)), '235 2.7.0');
  t.equal(codeOf(await c.command('MAIL FROM:<bob@example.org>')), '250 2.1.0');
  await c.quit();
});

t.test('LMTP: LHLO, one reply per recipient after DATA', async (t) => {
  const h = await startSmtp(t, { lmtp: true, authOffered: 'never' });
  const c = await h.connect();
  t.match(c.greeting?.text ?? '', /LMTP/);
  t.equal((await c.command('EHLO x')).code, 500, 'EHLO is not LMTP');
  const lhlo = await c.command('LHLO mta.example');
  t.equal(lhlo.code, 250);
  t.notOk(lhlo.lines.some((l) => l.startsWith('AUTH')));
  c.write(
    'MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n',
  );
  t.same((await c.replies(5)).map(codeOf), ['250 2.1.0', '250 2.1.5', '550 5.1.1', '250 2.1.5', '354']);
  c.write('Subject: lmtp\r\n\r\nhi\r\n.\r\n');
  const per = await c.replies(2);
  t.same(per.map((r) => r.text.replace(/[0-9A-F]{12}$/, 'ID')), [
    '2.0.0 <alice@example.org> Ok: delivered as ID',
    '2.0.0 <bob@example.org> Ok: delivered as ID',
  ]);
  await c.quit();
  const alice = await delivered(h.root ?? '', 'alice');
  t.match(splitTrace(alice[0]?.[1] ?? Buffer.alloc(0)).received, /with LMTP\n/);
});

t.test('reverse DNS for Received: loopback is localhost without asking DNS; others through the resolver', async (t) => {
  const asked: string[] = [];
  const h = await startSmtp(t, {
    reverseLookup: true,
    proxyProtocol: true,
    resolver: {
      reverse(ip, cb) {
        asked.push(ip);
        cb(null, ['client.remote.example']);
      },
    },
  });
  // With the PROXY protocol on, every client says where it is.
  for (const preamble of ['PROXY TCP4 127.0.0.1 127.0.0.1 40000 25\r\n', REMOTE]) {
    const c = await h.connect({ preamble });
    await c.ehlo('helo.example');
    c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: rdns\r\n\r\nx\r\n.\r\n');
    t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']);
    await c.quit();
  }
  t.same(asked, ['203.0.113.7'], 'DNS is asked about the remote client only');
  const received = (await delivered(h.root ?? '', 'alice')).map(([, b]) => splitTrace(b).received.split('\n')[0]).sort();
  t.same(received, [
    'Received: from helo.example (client.remote.example [203.0.113.7])',
    'Received: from helo.example (localhost [127.0.0.1])',
  ]);
});

t.test('LMTP on a Unix socket (Postfix lmtp:unix:...)', async (t) => {
  const h = await startSmtp(t, { lmtp: true, authOffered: 'never' });
  const path = join(h.root ?? '', 'lmtp.sock');
  const unix = createSmtpServer({ store: h.store, users: testUsers(), localDomains: ['example.org'], lmtp: true, authOffered: 'never' });
  t.teardown(() => unix.close());
  t.equal(await unix.listen({ path }), path);
  const c = await SmtpTestClient.connect(path);
  t.teardown(() => c.destroy());
  await c.command('LHLO mta.example');
  c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: unix\r\n\r\nx\r\n.\r\n');
  t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']);
  await c.quit();
  const alice = await delivered(h.root ?? '', 'alice');
  t.match(splitTrace(alice[0]?.[1] ?? Buffer.alloc(0)).received, /^Received: from mta\.example\n\tby localhost with LMTP\n/, 'no client address on a Unix socket');
});

t.test('SMTPUTF8 and 8BITMIME: UTF-8 addresses and 8-bit content pass untouched', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  c.write(Buffer.from('MAIL FROM:<josé@exämple.example> SMTPUTF8 BODY=8BITMIME\r\n', 'utf8'));
  t.equal(codeOf(await c.reply()), '250 2.1.0');
  t.equal(codeOf(await c.command('RCPT TO:<alice@example.org>')), '250 2.1.5');
  await c.command('DATA');
  c.write(Buffer.from('Subject: Grüße\r\n\r\nκαλημέρα 🌞\r\n.\r\n', 'utf8'));
  t.equal(codeOf(await c.reply()), '250 2.0.0');
  t.equal(codeOf(await c.command('MAIL FROM:<x@remote.example> BODY=BINARYMIME')), '501 5.5.4', 'no CHUNKING, no BINARYMIME');
  await c.quit();
  const [file] = await delivered(h.root ?? '', 'alice');
  const text = file?.[1].toString('utf8') ?? '';
  t.match(text, /^Return-Path: <josé@exämple\.example>\n/);
  t.match(text, /\nSubject: Grüße\n\nκαλημέρα 🌞\n$/);
});

t.test('message hooks: raw stream (rmRaw) and parsed (rmMessageParsed), MAIL/RCPT decisions', async (t) => {
  const seen: { from: string; rcpts: string[]; raw: string; trace: string }[] = [];
  const h = await startSmtp(t, {
    onMailFrom: ({ address }) =>
      address === 'spammer@remote.example' ? { action: 'reject', reply: new SmtpReplyError(550, '5.7.1', 'Sender refused') } : undefined,
    onRcptTo: ({ address, policy }) => {
      if (address === 'anyone@elsewhere.example') return { action: 'accept' };
      if (address === 'alice@example.org') throw new SmtpReplyError(450, '4.2.1', 'Try alice later');
      return policy.ok ? undefined : { action: 'reject', reply: new SmtpReplyError(550, '5.1.1', `custom: ${address}`) };
    },
    onMessage: {
      mode: 'raw',
      handle: async (message, content) => {
        const chunks: Buffer[] = [];
        for await (const chunk of content) chunks.push(chunk as Buffer);
        seen.push({
          from: message.mailFrom,
          rcpts: message.recipients.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('latin1'),
          trace: message.traceHeaders('bob@example.org'),
        });
        return message.recipients.map((r) => (r.address === 'bob@example.org' ? new SmtpReplyError(452, '4.2.2', 'Bob is full') : undefined));
      },
    },
  });
  const c = await h.connect();
  await c.ehlo();
  t.equal((await c.command('MAIL FROM:<spammer@remote.example>')).raw, '550 5.7.1 Sender refused\r\n');
  await c.command('MAIL FROM:<ok@remote.example>');
  t.equal((await c.command('RCPT TO:<alice@example.org>')).raw, '450 4.2.1 Try alice later\r\n');
  t.equal((await c.command('RCPT TO:<nobody@example.org>')).raw, '550 5.1.1 custom: nobody@example.org\r\n');
  t.equal(codeOf(await c.command('RCPT TO:<anyone@elsewhere.example>')), '250 2.1.5', 'the hook may accept beyond the policy');
  t.equal(codeOf(await c.command('RCPT TO:<bob@example.org>')), '250 2.1.5');
  await c.command('DATA');
  c.write('Subject: raw\r\n\r\nline\r\n..dot\r\n.\r\n');
  t.equal((await c.reply()).raw, '452 4.2.2 Bob is full\r\n', 'SMTP: one reply, the failure');
  await c.quit();
  t.equal(seen.length, 1);
  t.same(seen[0]?.rcpts, ['anyone@elsewhere.example', 'bob@example.org']);
  t.equal(seen[0]?.raw, 'Subject: raw\r\n\r\nline\r\n.dot\r\n', 'raw content: CRLF, unstuffed, no added headers');
  t.match(seen[0]?.trace, /^Return-Path: <ok@remote\.example>\r\nReceived: from client\.example/);
  t.same(await delivered(h.root ?? '', 'bob'), [], 'the store was not used');

  const parsed: { subject: string | undefined; text: string | undefined; attachments: number }[] = [];
  const p = await startSmtp(t, {
    onMessage: {
      mode: 'parsed',
      handle: async (_message, mail) => {
        parsed.push({ subject: mail.subject, text: mail.text, attachments: mail.attachments.length });
      },
    },
  });
  const d = await p.connect();
  await d.ehlo();
  const mime =
    'Subject: =?UTF-8?B?w6l0w6k=?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
    '--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n.\r\n';
  t.same(await sendMessage(d, 'a@remote.example', ['alice@example.org'], mime), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']);
  await d.quit();
  t.same(parsed, [{ subject: 'été', text: 'hello', attachments: 1 }]);
});

t.test('one info line per accepted message; the debug trace has commands and replies', async (t) => {
  const { lines, logger } = captureLog('trace');
  const h = await startSmtp(t, { logger });
  const c = await h.connect();
  await c.ehlo();
  await sendMessage(c, 'from@remote.example', ['alice@example.org', 'bob@example.org'], 'Subject: x\r\n\r\n12345\r\n.\r\n');
  await c.quit();
  const accepted = lines.filter((l) => l['msg'] === 'message accepted');
  t.equal(accepted.length, 1);
  t.match(accepted[0], {
    level: 30,
    proto: 'smtp',
    queueId: /^[0-9A-F]{12}$/,
    from: 'from@remote.example',
    rcpts: ['alice@example.org', 'bob@example.org'],
    size: 21,
    tls: false,
  });
  t.type(accepted[0]?.['ms'], 'number');
  t.ok(lines.some((l) => l['msg'] === 'C: MAIL FROM:<from@remote.example>' && l['level'] === 20));
  t.ok(lines.some((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('S: 250 2.0.0 Ok: queued as')));
});

t.test('the same session on MemoryStore and on MaildirStore: the same messages through the port', async (t) => {
  const outcomes: string[][] = [];
  for (const store of [new MemoryStore({ hostname: 'test' }), undefined]) {
    const h = await startSmtp(t, store === undefined ? {} : { store });
    const c = await h.connect();
    await c.ehlo();
    c.write(
      'MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob+x@example.org>\r\nDATA\r\n' +
        'Subject: both\r\n\r\nline\r\n..dot\n\r\n.\r\nQUIT\r\n',
    );
    t.same((await c.replies(6)).map(codeOf), ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '250 2.0.0', '221 2.0.0']);
    await c.closed();
    const messages: string[] = [];
    for (const name of ['alice', 'bob']) {
      const drop = await h.store.openMaildrop({ name });
      for (let i = 0; i < drop.messages.length; i++) {
        const chunks: Buffer[] = [];
        for await (const chunk of await drop.openMessage(i)) chunks.push(chunk as Buffer);
        // Wire form: CRLF; the Received date and queue id differ between runs.
        messages.push(`${name}: ${Buffer.concat(chunks).toString('latin1').replace(/id [0-9A-F]{12}/, 'id Q').replace(/; .*\+0000/, '; DATE')}`);
      }
      await drop.release();
    }
    outcomes.push(messages);
  }
  t.equal(outcomes[0]?.length, 2);
  t.same(outcomes[0], outcomes[1], 'identical on both stores');
  t.match(outcomes[0]?.[1], /for <bob\+x@example\.org>; DATE\r\nSubject: both\r\n\r\nline\r\n\.dot\r\n\r\n$/);
});

t.test('AUTH with case-insensitive names (the users file setting): ALICE logs in as alice, over SMTP as over POP3', async (t) => {
  const users = UserDatabase.fromEntries([{ name: 'alice', password: '{PLAIN}alice-secret' }], { localDomains: ['example.org'], caseInsensitive: true });
  const { lines, logger } = captureLog('trace');
  const h = await startSmtp(t, { users, logger });
  const c = await h.connect();
  await c.ehlo();
  t.equal((await c.command('AUTH LOGIN')).code, 334);
  t.equal((await c.command(b64('ALICE@Example.ORG'))).code, 334);
  t.equal(codeOf(await c.command(b64('alice-secret'))), '235 2.7.0');
  await c.quit();
  t.ok(lines.some((l) => l['msg'] === 'login' && l['user'] === 'alice'), 'the canonical name');
});

t.test('the info line of an accepted message names the TLS version and the authenticated user', async (t) => {
  const { lines, logger } = captureLog('trace');
  const h = await startSmtp(t, { tls: tlsPair, implicitTls: true, requireAuth: true, logger });
  const c = await h.connect({ tls: clientTls });
  await c.ehlo();
  t.equal(codeOf(await c.command(`AUTH PLAIN ${b64('\0bob\0bob-secret')}`)), '235 2.7.0');
  await sendMessage(c, 'bob@example.org', ['alice@example.org'], 'Subject: x\r\n\r\ny\r\n.\r\n');
  await c.quit();
  const accepted = lines.filter((l) => l['msg'] === 'message accepted');
  t.equal(accepted.length, 1);
  t.match(accepted[0], { from: 'bob@example.org', rcpts: ['alice@example.org'], tls: /^TLSv1\.[23]$/, user: 'bob' });
});

t.test('reply texts: greeting banner and EHLO/HELO response are configurable', async (t) => {
  const h = await startSmtp(t, { banner: 'private relay, be nice', heloResponse: '%s greets %s' });
  const c = await h.connect();
  t.equal(c.greeting?.raw, '220 mx.example.org ESMTP private relay, be nice\r\n');
  // The second %s is the client as this server knows it (reverse DNS, or the address literal), not its HELO.
  t.equal((await c.ehlo('client.example')).reply.lines[0], 'mx.example.org greets [127.0.0.1]');
  t.equal((await c.command('HELO client.example')).raw, '250 mx.example.org greets [127.0.0.1]\r\n');
  await c.quit();
});
