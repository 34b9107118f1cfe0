/**
 * nodemailer (the SMTP client most Node applications send with) against
 * live listeners on a real Maildir tree: a message it composes arrives
 * byte-correct (LF form after our two trace headers) and Python's poplib
 * fetches it back identical to what was sent plus those headers; STARTTLS
 * + AUTH on submission with certificate checks; a pooled transport sending
 * concurrently; LMTP with a per-recipient refusal.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { simpleParser } from 'mailparser';
import { toStoredBuffer } from '../../src/storage/wire.js';
import { delivered, splitTrace } from '../helpers/smtp-setup.js';
import { CA_FILE, missingClient, POPLIB_FETCH, run, startSmtpInterop } from '../helpers/smtp-interop.js';

const skipPoplib = await missingClient('python3', ['-c', 'import poplib']);
const CA = readFileSync(CA_FILE);
const ENVELOPE = { from: 'sender@remote.example', to: ['alice@example.org'] };

/** Bytes nodemailer itself builds: UTF-8 headers, alternative text/html, a binary attachment, dot lines, long lines. */
async function composed(n: number): Promise<Buffer> {
  const composer = new MailComposer({
    from: '"Sénder" <sender@remote.example>',
    to: 'alice@example.org',
    subject: `Grüße ${n}: ünïcödé and a long subject ${'x'.repeat(80)}`,
    messageId: `<msg-${n}@remote.example>`,
    date: new Date(Date.UTC(2025, 6, 1, 10, 0, n)),
    // CRLF lines: MailComposer keeps the text's line ends, and the bytes built are then exactly the wire bytes.
    text: `line one\r\n.a line starting with a dot\r\n..two dots\r\n.\r\n${'long '.repeat(300)}\r\nend ${n}\r\n`,
    html: `<p>Hello <b>${n}</b></p>`,
    attachments: [{ filename: 'bytes.bin', content: Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 7 + n) % 256)) }],
  });
  return composer.compile().build();
}

t.test('nodemailer: composed messages arrive byte-correct; poplib reads back what was sent plus two headers', { skip: skipPoplib }, async (t) => {
  const server = await startSmtpInterop(t);
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: server.ports.smtp,
    secure: false,
    name: 'client.example',
    tls: { ca: CA, servername: 'localhost' },
  });
  t.teardown(() => transport.close());
  const sent: Buffer[] = [];
  for (let n = 0; n < 3; n++) {
    const raw = await composed(n);
    t.ok(raw.includes('\r\n.a line starting with a dot\r\n..two dots\r\n.\r\n'), 'dot lines (and a lone dot) reach the wire, stuffed');
    t.notOk(/[^\r]\n/.test(raw.toString('latin1')), 'CRLF only');
    const info = await transport.sendMail({ envelope: ENVELOPE, raw });
    t.same(info.accepted, ['alice@example.org']);
    t.match(info.response, /^250 2\.0\.0 Ok: queued as [0-9A-F]{12}/);
    sent.push(raw);
  }
  const files = await delivered(server.root, 'alice');
  t.equal(files.length, sent.length);
  t.same(
    files.map(([, b]) => splitTrace(b).rest).sort(),
    sent.map((b) => toStoredBuffer(b).toString('latin1')).sort(),
    'stored bytes: what nodemailer sent, in LF form',
  );
  for (const [, bytes] of files) {
    // The server offers STARTTLS (a certificate is configured): nodemailer upgrades opportunistically.
    t.match(splitTrace(bytes).received, /^Received: from client\.example \(\[127\.0\.0\.1\]\)\n\tby mx\.example\.org with ESMTPS \(TLSv1\.[23] /);
  }

  const fetched = await run('python3', ['-c', POPLIB_FETCH, String(server.ports.pop3), 'alice']);
  t.equal(fetched.code, 0, fetched.stderr);
  const wire = (JSON.parse(fetched.stdout.toString()) as string[]).map((hex) => Buffer.from(hex, 'hex').toString('latin1'));
  t.equal(wire.length, sent.length);
  for (const message of wire) {
    t.match(message, /^Return-Path: <sender@remote\.example>\r\nReceived: from client\.example [^\r\n]+\r\n\tby mx\.example\.org with ESMTPS [^\r\n]+\r\n\tid [0-9A-F]{12} for <alice@example\.org>; [^\r\n]+\r\n/);
  }
  const bodies = wire.map((m) => m.split('\r\n').slice(4).join('\r\n')).sort();
  t.same(bodies, sent.map((b) => b.toString('latin1')).sort(), 'poplib gets exactly what nodemailer sent, plus our two headers');
});

t.test('nodemailer: submission with STARTTLS required and AUTH; wrong password refused', async (t) => {
  const server = await startSmtpInterop(t);
  const submit = (pass: string) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: server.ports.submission,
      secure: false,
      requireTLS: true,
      name: 'laptop.example',
      auth: { user: 'alice', pass },
      tls: { ca: CA, servername: 'localhost' },
    });
  const good = submit('secret');
  const bad = submit('wrong');
  t.teardown(() => {
    good.close();
    bad.close();
  });
  const info = await good.sendMail({
    from: 'alice@example.org',
    to: 'bob@example.org',
    subject: 'Über TLS',
    text: 'hello over submission\n',
    attachments: [{ filename: 'a.txt', content: 'attached\n' }],
  });
  t.same(info.accepted, ['bob@example.org']);
  await t.rejects(bad.sendMail({ from: 'alice@example.org', to: 'bob@example.org', text: 'x' }), { message: /535 5\.7\.8 / });
  const files = await delivered(server.root, 'bob');
  t.equal(files.length, 1);
  const trace = splitTrace(files[0]?.[1] ?? Buffer.alloc(0));
  t.match(trace.received, /with ESMTPSA \(TLSv1\.[23] /);
  const parsed = await simpleParser(Buffer.from(trace.rest, 'latin1'));
  t.equal(parsed.subject, 'Über TLS');
  t.equal(parsed.text, 'hello over submission\n');
  t.equal(parsed.attachments[0]?.content.toString(), 'attached\n');
  t.equal(parsed.messageId, info.messageId);
});

t.test('nodemailer: a pooled transport sending concurrently; every message lands once', async (t) => {
  const server = await startSmtpInterop(t);
  const pool = nodemailer.createTransport({
    pool: true,
    maxConnections: 5,
    maxMessages: 100,
    host: '127.0.0.1',
    port: server.ports.smtp,
    secure: false,
    ignoreTLS: true,
  });
  t.teardown(() => pool.close());
  // The users' Maildirs exist before the burst: concurrent first deliveries to a user whose folder
  // does not exist yet race in the store's folder check (ensureInsideRoot, reported to its owner).
  for (const to of ['alice@example.org', 'bob@example.org']) await pool.sendMail({ from: 'sender@remote.example', to, subject: 'first', text: 'first\n' });
  const count = 40;
  const infos = await Promise.all(
    Array.from({ length: count }, (_, n) =>
      pool.sendMail({ from: 'sender@remote.example', to: n % 2 === 0 ? 'alice@example.org' : 'bob+pool@example.org', subject: `pool ${n}`, text: `message ${n}\n` }),
    ),
  );
  t.equal(infos.filter((i) => i.accepted.length === 1).length, count);
  const all = [...(await delivered(server.root, 'alice')), ...(await delivered(server.root, 'bob'))];
  t.equal(all.length, count + 2);
  const subjects = all.flatMap(([, b]) => /\nSubject: (pool \d+)\n/.exec(b.toString('latin1'))?.[1] ?? []).sort();
  t.same(subjects, Array.from({ length: count }, (_, n) => `pool ${n}`).sort(), 'each message exactly once');
  t.ok(all.every(([, b]) => / with ESMTP\n/.test(splitTrace(b).received)));
});

t.test('nodemailer over LMTP: per-recipient replies, the unknown one rejected, the others delivered', async (t) => {
  const server = await startSmtpInterop(t);
  const lmtp = nodemailer.createTransport({ lmtp: true, host: '127.0.0.1', port: server.ports.lmtp, name: 'relay.example' });
  t.teardown(() => lmtp.close());
  const info = await lmtp.sendMail({
    envelope: { from: 'sender@remote.example', to: ['alice@example.org', 'nobody@example.org', 'bob@example.org'] },
    raw: 'Subject: lmtp\r\n\r\nvia LMTP\r\n',
  });
  t.same([...info.accepted].sort(), ['alice@example.org', 'bob@example.org']);
  t.same(info.rejected, ['nobody@example.org']);
  for (const user of ['alice', 'bob']) {
    const files = await delivered(server.root, user);
    t.equal(files.length, 1);
    t.equal(splitTrace(files[0]?.[1] ?? Buffer.alloc(0)).rest, 'Subject: lmtp\n\nvia LMTP\n');
  }
});
