/**
 * Limits and clocks over real sockets: recipients, messages, connections
 * (global and per address), idle, line and DATA-rate clocks (fired by
 * hand, no sleeps), error replies, unauthenticated commands, line length,
 * and clients that half-close.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { nodeFs, type FsLayer } from '../../src/storage/maildir/fs.js';
import { codeOf } from '../helpers/smtp-client.js';
import { delivered, leftovers, startSmtp, type Harness, type HarnessOptions } from '../helpers/smtp-setup.js';

const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
const tlsPair = { cert: readFileSync(new URL('localhost.crt', TLS_DIR)), key: readFileSync(new URL('localhost.key', TLS_DIR)) };
const clientTls: ConnectionOptions = { ca: readFileSync(new URL('ca.crt', TLS_DIR)), servername: 'localhost' };

t.test('max recipients: 452 4.5.3, the transaction goes on with those accepted', async (t) => {
  const h = await startSmtp(t, { limits: { maxRecipients: 2 } });
  const c = await h.connect();
  await c.ehlo();
  c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<postmaster@example.org>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
  t.same((await c.replies(6)).map(codeOf), ['250 2.1.0', '250 2.1.5', '250 2.1.5', '452 4.5.3', '250 2.1.5', '354']);
  c.write('Subject: x\r\n\r\nx\r\n.\r\n');
  t.equal(codeOf(await c.reply()), '250 2.0.0');
  await c.quit();
  t.equal((await delivered(h.root ?? '', 'postmaster')).length, 0);
});

t.test('max messages per connection: the next MAIL gets 421 4.7.0 and the connection closes', async (t) => {
  const h = await startSmtp(t, { limits: { maxMessagesPerConnection: 2 } });
  const c = await h.connect();
  await c.ehlo();
  for (let i = 0; i < 2; i++) {
    c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\n');
    t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']);
  }
  t.equal(codeOf(await c.command('MAIL FROM:<s@remote.example>')), '421 4.7.0');
  await c.closed();
});

t.test('a burst from one address keeps the first maxConnectionsPerIp and refuses only the rest (regression, issue 6 load harness)', async (t) => {
  const h = await startSmtp(t, { limits: { maxConnectionsPerIp: 5 } });
  // Opened at once: every accept is counted before any greeting is decided.
  const burst = await Promise.all(Array.from({ length: 12 }, () => h.connect({ localAddress: '127.0.0.4' })));
  const codes = burst.map((c) => c.greeting?.code);
  t.equal(codes.filter((c) => c === 220).length, 5, 'exactly the limit served (all 12 were refused before the fix)');
  t.equal(codes.filter((c) => c === 421).length, 7);
  for (const c of burst) if (c.greeting?.code === 220) await c.quit();
});

t.test('per-address and global connection limits', async (t) => {
  const h = await startSmtp(t, { limits: { maxConnectionsPerIp: 1 } });
  const first = await h.connect();
  const second = await h.connect();
  t.equal(second.greeting?.raw, '421 Too many connections from your address, try again later\r\n');
  await second.closed();
  const other = await h.connect({ localAddress: '127.0.0.2' });
  t.equal(other.greeting?.code, 220, 'another address is not affected');
  await first.quit();
  const again = await h.connect();
  t.equal(again.greeting?.code, 220, 'the slot is free once the first one left');
  await again.quit();
  await other.quit();

  const g = await startSmtp(t, { limits: { maxConnections: 1 } });
  const one = await g.connect();
  const two = await g.connect();
  t.equal(two.greeting?.code, 421, 'over the global limit: 421 before any greeting');
  await two.closed();
  await one.quit();
});

t.test('idle clock: only complete command lines reset it', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  c.write('NO');
  await h.timers.running('line'); // the partial line has arrived
  t.same(h.timers.pending('idle'), [300_000], 'still running from the last complete command');
  h.timers.fire('idle');
  const reply = await c.reply();
  t.equal(reply.raw, '421 4.4.2 Timeout waiting for a command, closing connection\r\n');
  await c.closed();
});

t.test('line deadline: a byte-a-minute client is cut off', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  c.write('MAIL FROM:<s');
  await h.timers.running('line');
  t.same(h.timers.pending('line'), [60_000]);
  h.timers.fire('line');
  t.equal(codeOf(await c.reply()), '421 4.4.2');
  await c.closed();
});

t.test('DATA rate: a window without enough octets closes the connection, nothing stored', async (t) => {
  const h = await startSmtp(t, { limits: { dataWindowMs: 30_000, minDataRate: 10 } });
  const c = await h.connect();
  await c.ehlo();
  c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
  t.same((await c.replies(3)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354']);
  await h.timers.running('data');
  t.same(h.timers.pending('idle'), [], 'no idle clock during DATA');
  c.write('S');
  h.timers.fire('data');
  t.equal((await c.reply()).raw, '421 4.4.2 Message data arriving too slowly, closing connection\r\n');
  await c.closed();
  t.same(await delivered(h.root ?? '', 'alice'), []);
});

t.test('DATA rate: a client keeping up passes the window', async (t) => {
  let enough: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (enough = resolve));
  const h = await startSmtp(t, {
    limits: { dataWindowMs: 30_000, minDataRate: 10 },
    onMessage: {
      mode: 'raw',
      handle: async (_m, content) => {
        let n = 0;
        for await (const chunk of content) {
          n += (chunk as Buffer).length;
          if (n >= 1000) enough();
        }
      },
    },
  });
  const c = await h.connect();
  await c.ehlo();
  c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
  await c.replies(3);
  c.write(`Subject: x\r\n\r\n${'y'.repeat(2000)}\r\n`);
  await arrived; // the handler read them, so the clock counted them
  h.timers.fire('data');
  t.same(h.timers.pending('data'), [30_000], 'a new window');
  c.write('.\r\n');
  t.equal(codeOf(await c.reply()), '250 2.0.0');
  await c.quit();
});

t.test('error limit: the Nth 5xx reply is followed by 421 4.7.0', async (t) => {
  const h = await startSmtp(t, { limits: { maxErrors: 3 } });
  const c = await h.connect();
  await c.ehlo();
  await c.command('MAIL FROM:<s@remote.example>');
  t.equal(codeOf(await c.command('RCPT TO:<a1@example.org>')), '550 5.1.1');
  t.equal(codeOf(await c.command('RCPT TO:<a2@example.org>')), '550 5.1.1');
  c.write('RCPT TO:<a3@example.org>\r\n');
  t.same((await c.replies(2)).map(codeOf), ['550 5.1.1', '421 4.7.0']);
  await c.closed();
});

t.test('where AUTH is required, unauthenticated commands are limited', async (t) => {
  const h = await startSmtp(t, { requireAuth: true, limits: { maxUnauthenticatedCommands: 3 } });
  const c = await h.connect();
  await c.ehlo();
  await c.command('NOOP');
  t.equal(codeOf(await c.command('NOOP')), '421 4.4.2');
  await c.closed();
});

t.test('command line length: RFC 5321 512 octets with CRLF', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  t.equal(codeOf(await c.command(`NOOP ${'x'.repeat(505)}`)), '250 2.0.0', '512 with CRLF');
  t.equal((await c.command(`NOOP ${'x'.repeat(506)}`)).code, 421, 'one more is refused');
  await c.closed();
});

t.test('close(): sessions are told 421 and the server stops accepting', async (t) => {
  const h = await startSmtp(t, { limits: { closeTimeoutMs: 60_000 } });
  const c = await h.connect();
  await c.ehlo();
  const closing = h.server.close();
  t.equal(codeOf(await c.command('NOOP')), '421 4.4.2');
  await c.closed();
  await closing;
  t.equal(h.server.connections, 0);
});

/**
 * Half-closing clients (`nc -N`, shutdown(SHUT_WR) after the last command):
 * every reply owed is written after the FIN, then the server closes. A
 * lost 250 makes the sender retry a message that was stored: a duplicate.
 * The store's directory fsync waits until the client has half-closed, so
 * the FIN reaches the server while the message is still being written.
 */
async function gatedHarness(t: Test, options: HarnessOptions = {}): Promise<{ h: Harness; release: () => void }> {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const fs: FsLayer = {
    ...nodeFs,
    async fsyncDir(path) {
      await gate;
      return nodeFs.fsyncDir(path);
    },
  };
  return { h: await startSmtp(t, { ...options, fs }), release };
}

/** Ordering aid only (no assertion depends on it): let the FIN reach the server before the store answers. */
const afterFin = (release: () => void): void => void setTimeout(release, 100);

const MESSAGE = 'MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: half\r\n\r\nbody\r\n.\r\n';

t.test('half-close: DATA, "." and QUIT in one write, then FIN: 250 and 221 arrive, the message is stored once', async (t) => {
  const { h, release } = await gatedHarness(t);
  const c = await h.connect();
  await c.ehlo();
  c.write(`${MESSAGE}QUIT\r\n`);
  c.end();
  afterFin(release);
  t.same((await c.replies(5)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0', '221 2.0.0']);
  t.equal(await c.closed(), '', 'nothing after the 221; the server closed');
  const alice = await delivered(h.root ?? '', 'alice');
  t.equal(alice.length, 1, 'stored exactly once');
  t.match(alice[0]?.[1].toString('latin1'), /\nSubject: half\n\nbody\n$/);
  t.same(await leftovers(h.root ?? '', 'alice'), []);
});

t.test('half-close without QUIT: the 250 arrives, then the server closes', async (t) => {
  const { h, release } = await gatedHarness(t);
  const c = await h.connect();
  await c.ehlo();
  c.write(MESSAGE);
  c.end();
  afterFin(release);
  t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']);
  t.equal(await c.closed(), '', 'closed without a further reply');
  t.equal((await delivered(h.root ?? '', 'alice')).length, 1);
  t.equal(h.server.connections, 0);
});

t.test('half-close: a last command without CRLF is still answered (smtp-server runs it at the FIN)', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  c.write('NOOP\r\nQUIT');
  c.end();
  t.same((await c.replies(2)).map(codeOf), ['250 2.0.0', '221 2.0.0']);
  await c.closed();
});

t.test('half-close in the middle of DATA: the connection closes, nothing is stored', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
  t.same((await c.replies(3)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354']);
  c.write('Subject: cut\r\n\r\nno end marker\r\n');
  c.end();
  t.equal(await c.closed(), '', 'no reply for a message that never ended');
  await h.server.close(); // waits for the handler to see the client gone
  t.same(await delivered(h.root ?? '', 'alice'), []);
  t.same(await leftovers(h.root ?? '', 'alice'), []);
});

t.test('half-close after STARTTLS and on SMTPS: the replies owed still arrive', async (t) => {
  for (const mode of ['starttls', 'smtps'] as const) {
    const { h, release } = await gatedHarness(t, { tls: tlsPair, implicitTls: mode === 'smtps' });
    const c = await h.connect(mode === 'smtps' ? { tls: clientTls } : {});
    await c.ehlo();
    if (mode === 'starttls') {
      t.equal(codeOf(await c.startTls(clientTls)), '220 2.0.0');
      await c.ehlo();
    }
    c.write(`${MESSAGE}QUIT\r\n`);
    c.end();
    afterFin(release);
    t.same((await c.replies(5)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0', '221 2.0.0'], mode);
    await c.closed();
    t.equal((await delivered(h.root ?? '', 'alice')).length, 1, `${mode}: stored once`);
  }
});

t.test('half-close on LMTP: one reply per recipient, then 221', async (t) => {
  const { h, release } = await gatedHarness(t, { lmtp: true, authOffered: 'never' });
  const c = await h.connect();
  await c.command('LHLO mta.example');
  c.write('MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: l\r\n\r\nx\r\n.\r\nQUIT\r\n');
  c.end();
  afterFin(release);
  t.same((await c.replies(7)).map(codeOf), ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '250 2.0.0', '250 2.0.0', '221 2.0.0']);
  await c.closed();
  t.equal((await delivered(h.root ?? '', 'alice')).length, 1);
  t.equal((await delivered(h.root ?? '', 'bob')).length, 1);
});
