/**
 * Limits and clocks over real sockets: recipients, messages, connections
 * (global and per address), idle, line and DATA-rate clocks (fired by
 * hand, no sleeps), error replies, unauthenticated commands, line length.
 */
import t from 'tap';
import { codeOf } from '../helpers/smtp-client.js';
import { delivered, startSmtp } from '../helpers/smtp-setup.js';

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
