/**
 * SmtpServer's typed events (src/smtp/events.ts) over real sockets: one
 * event per command with its final reply code (AUTH's 334 challenges and
 * DATA's 354 are not results), logins and failures, the message with its
 * size, and the connection's octets each way, counted after TLS as the
 * client saw them in plaintext.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SmtpServerEvents } from '../../src/smtp/events.js';
import { startSmtp } from '../helpers/smtp-setup.js';

const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
const tlsPair = { cert: readFileSync(new URL('localhost.crt', TLS_DIR)), key: readFileSync(new URL('localhost.key', TLS_DIR)) };
const clientTls: ConnectionOptions = { ca: readFileSync(new URL('ca.crt', TLS_DIR)), servername: 'localhost' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

type Seen = { [K in keyof SmtpServerEvents]: SmtpServerEvents[K][0][] };

function record(server: import('../../src/smtp/server.js').SmtpServer): Seen {
  const seen: Seen = { connect: [], command: [], login: [], 'login-failed': [], message: [], 'session-end': [] };
  for (const name of Object.keys(seen) as (keyof Seen)[]) {
    (server.on as (event: string, listener: (payload: unknown) => void) => unknown).call(server, name, (payload) => {
      (seen[name] as unknown[]).push(payload);
    });
  }
  return seen;
}

t.test('commands with their final codes, AUTH LOGIN, STARTTLS, a message, and octets each way', async (t) => {
  const h = await startSmtp(t, { tls: tlsPair });
  const seen = record(h.server);
  const c = await h.connect();
  let written = 0;
  const send = async (line: string) => {
    written += Buffer.byteLength(`${line}\r\n`, 'latin1');
    return c.command(line);
  };
  t.equal((await send('EHLO client.example')).code, 250);
  t.equal((await send('STARTTLS')).code, 220);
  await c.upgrade(clientTls);
  t.equal((await send('EHLO client.example')).code, 250);
  t.equal((await send('AUTH LOGIN')).code, 334);
  t.equal((await send(b64('alice'))).code, 334);
  t.equal((await send(b64('wrong'))).code, 535);
  t.equal((await send('AUTH LOGIN')).code, 334);
  t.equal((await send(b64('alice'))).code, 334);
  t.equal((await send(b64('alice-secret'))).code, 235);
  t.equal((await send('MAIL FROM:<alice@example.org>')).code, 250);
  t.equal((await send('RCPT TO:<bob@example.org>')).code, 250);
  t.equal((await send('DATA')).code, 354);
  t.equal((await send('Subject: hi\r\n\r\nhello\r\n.')).code, 250);
  t.equal((await send('QUIT')).code, 221);
  await c.closed();
  await new Promise<void>((resolve) => {
    if (seen['session-end'].length > 0) resolve();
    else h.server.once('session-end', () => resolve());
  });

  t.equal(seen.connect.length, 1);
  t.same(
    seen.command.map((e) => `${e.command} ${e.code}`),
    ['EHLO 250', 'STARTTLS 220', 'EHLO 250', 'AUTH 535', 'AUTH 235', 'MAIL 250', 'RCPT 250', 'DATA 250', 'QUIT 221'],
  );
  t.same(seen['login-failed'].map((e) => [e.login, e.mechanism]), [['alice', 'LOGIN']]);
  t.same(seen.login.map((e) => [e.user, e.mechanism]), [['alice', 'LOGIN']]);
  t.equal(seen.message.length, 1);
  t.equal(seen.message[0]?.delivered, 1);
  t.equal(seen.message[0]?.refused, 0);
  t.equal(seen.message[0]?.size, Buffer.byteLength('Subject: hi\r\n\r\nhello\r\n'), 'content octets, without the final dot');
  const end = seen['session-end'][0];
  t.equal(end?.bytesReceived, written, 'every octet sent, plaintext and decrypted');
  t.equal(end?.bytesSent, Buffer.byteLength(c.transcript, 'latin1'), 'every octet received by the client');
  t.equal(seen.connect[0]?.sessionId, end?.sessionId);
});

t.test('LMTP: LHLO and DATA counted once however many recipients answer', async (t) => {
  const h = await startSmtp(t, { lmtp: true, authOffered: 'never' });
  const seen = record(h.server);
  const c = await h.connect();
  t.equal((await c.command('LHLO client.example')).code, 250);
  t.equal((await c.command('MAIL FROM:<x@remote.example>')).code, 250);
  t.equal((await c.command('RCPT TO:<alice@example.org>')).code, 250);
  t.equal((await c.command('RCPT TO:<bob@example.org>')).code, 250);
  t.equal((await c.command('DATA')).code, 354);
  c.write('Subject: two\r\n\r\nbody\r\n.\r\n');
  t.same((await c.replies(2)).map((r) => r.code), [250, 250]);
  t.equal((await c.command('QUIT')).code, 221);
  t.same(
    seen.command.map((e) => `${e.command} ${e.code}`),
    ['LHLO 250', 'MAIL 250', 'RCPT 250', 'RCPT 250', 'DATA 250', 'QUIT 221'],
  );
  t.same(seen.message.map((e) => [e.delivered, e.refused]), [[2, 0]]);
});
