import t, { type Test } from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { Connection, type ConnectionSettings, type ReadEvent } from '../../src/protocol/connection.ts';
import { TlsContextHolder } from '../../src/protocol/tls.ts';
import { realTimers } from '../../src/protocol/timers.ts';
import { LineClient } from '../helpers/pop3-client.ts';
import { ManualTimers } from '../helpers/pop3-timers.ts';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/tls/${name}`, import.meta.url));
const ca = fixture('ca.crt');
const tls = new TlsContextHolder({ cert: fixture('localhost.crt'), key: fixture('localhost.key') });

function settings(overrides: Partial<ConnectionSettings> = {}): ConnectionSettings {
  return {
    maxLineLength: 255,
    idleTimeoutMs: 600_000,
    lineTimeoutMs: 60_000,
    handshakeTimeoutMs: 30_000,
    writeHighWaterMark: 256 * 1024,
    lingerMs: 5_000,
    timers: realTimers,
    ...overrides,
  };
}

/** A listener that wraps the first accepted socket in a Connection. */
async function pair(t: Test, overrides: Partial<ConnectionSettings> = {}): Promise<{ server: Connection; client: LineClient }> {
  let onAccept: (socket: Socket) => void = () => {};
  const accepted = new Promise<Socket>((resolve) => (onAccept = resolve));
  const listener = createServer({ allowHalfOpen: true }, (socket) => onAccept(socket));
  t.teardown(() => listener.close());
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const client = await LineClient.connect((listener.address() as AddressInfo).port);
  const server = new Connection(await accepted, 'c1', settings(overrides));
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  return { server, client };
}

const line = (e: ReadEvent): string => (e.kind === 'line' ? e.line.toString() : `<${e.kind}>`);

t.test('pipelined lines are read from the buffer and answered in one batch, in order', async (t) => {
  const { server, client } = await pair(t);
  t.equal(server.remoteAddress, '127.0.0.1');
  t.ok(server.isLoopback);
  t.notOk(server.isTls);
  client.send('ONE', 'TWO', 'THREE');
  const first = await server.readLine();
  t.equal(line(first), 'ONE');
  server.write('+OK one\r\n');
  t.ok(server.hasBufferedLine, 'the rest of the batch is already here');
  t.equal(line(await server.readLine()), 'TWO');
  server.write('+OK two\r\n');
  t.equal(line(await server.readLine()), 'THREE');
  server.write('+OK three\r\n');
  const waiting = server.readLine(); // flushes: nothing more is buffered
  t.equal(await client.line(), '+OK one');
  t.equal(await client.line(), '+OK two');
  t.equal(await client.line(), '+OK three');
  client.end();
  t.equal(line(await waiting), '<eof>');
  t.equal(server.bytesSent, '+OK one\r\n+OK two\r\n+OK three\r\n'.length);
});

t.test('the idle timer runs while waiting and only a complete command restarts it', async (t) => {
  const timers = new ManualTimers();
  const { server, client } = await pair(t, { timers });
  const first = server.readLine();
  await timers.waitFor('idle');
  client.sendRaw('NO');
  await timers.waitFor('line');
  client.sendRaw('OP\r\n');
  t.equal(line(await first), 'NOOP');
  t.equal(timers.active('idle'), 0, 'stopped while a command runs');
  t.equal(timers.active('line'), 0);
  const second = server.readLine();
  t.same(timers.started, ['idle', 'line', 'idle'], 'a new idle timer for the next command');
  timers.fire('idle');
  t.equal(line(await second), '<idle-timeout>');
});

t.test('a byte-a-minute client hits the line deadline; more bytes do not extend it', async (t) => {
  const timers = new ManualTimers();
  const { server, client } = await pair(t, { timers });
  const read = server.readLine();
  client.sendRaw('U');
  await timers.waitFor('line');
  client.sendRaw('S');
  client.sendRaw('E');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(timers.started, ['idle', 'line'], 'the deadline was armed once');
  timers.fire('line');
  t.equal(line(await read), '<line-timeout>');
});

t.test('a partial line left after a pipelined batch starts its deadline when we wait again', async (t) => {
  const timers = new ManualTimers();
  const { server, client } = await pair(t, { timers });
  client.sendRaw('A\r\nB\r\nPART');
  t.equal(line(await server.readLine()), 'A');
  t.equal(timers.active('line'), 0, 'no deadline while we are busy');
  t.equal(line(await server.readLine()), 'B');
  const waiting = server.readLine();
  t.equal(timers.active('line'), 1);
  client.sendRaw('IAL\r\n');
  t.equal(line(await waiting), 'PARTIAL');
});

t.test('an over-long line is one too-long event; the session goes on', async (t) => {
  const { server, client } = await pair(t, { maxLineLength: 16 });
  client.sendRaw(`${'x'.repeat(5000)}\r\nNOOP\r\n`);
  const event = await server.readLine();
  t.same(event, { kind: 'too-long', length: 5000 });
  t.equal(line(await server.readLine()), 'NOOP');
  server.maxLineLength = 8000;
  client.sendRaw(`${'y'.repeat(5000)}\r\n`);
  t.equal(line(await server.readLine()), 'y'.repeat(5000));
});

t.test('shutdown ends a wait at once, and is returned before buffered lines', async (t) => {
  const { server, client } = await pair(t);
  const waiting = server.readLine();
  server.requestShutdown();
  t.equal(line(await waiting), '<shutdown>');
  client.send('NOOP');
  t.equal(line(await server.readLine()), '<shutdown>');
  t.ok(server.isShuttingDown);
});

t.test('STLS: pipelined plaintext is discarded, the reply goes out, the session continues encrypted', async (t) => {
  const { server, client } = await pair(t);
  client.sendRaw('STLS\r\nUSER injected\r\nPASS injected\r\n');
  t.equal(line(await server.readLine()), 'STLS');
  const upgraded = server.startTls(tls.current, '+OK Begin TLS negotiation\r\n');
  t.equal(await client.line(), '+OK Begin TLS negotiation');
  await client.startTls(ca);
  const discarded = await upgraded;
  t.equal(discarded, 'USER injected\r\nPASS injected\r\n'.length - 2, 'every injected octet counted (CRs not)');
  t.ok(server.isTls);
  client.send('CAPA');
  t.equal(line(await server.readLine()), 'CAPA', 'the first command after the handshake is the client’s');
  server.write('+OK secure\r\n');
  server.flush();
  t.equal(await client.line(), '+OK secure');
  await t.rejects(server.startTls(tls.current, 'x'), /already encrypted/);
});

t.test('a failed handshake after STLS rejects and closes', async (t) => {
  const { server, client } = await pair(t);
  client.send('STLS');
  await server.readLine();
  const upgraded = server.startTls(tls.current, '+OK Begin TLS negotiation\r\n');
  t.equal(await client.line(), '+OK Begin TLS negotiation');
  client.sendRaw('this is not a TLS ClientHello\r\n');
  await t.rejects(upgraded, { name: 'TlsHandshakeError' });
  await client.closed();
});

t.test('end() sends what is queued, then closes even if the client keeps talking', async (t) => {
  const timers = new ManualTimers();
  const { server, client } = await pair(t, { timers });
  server.write('+OK bye\r\n');
  const ended = server.end();
  t.equal(await client.line(), '+OK bye');
  client.send('NOOP', 'NOOP');
  await timers.waitFor('linger');
  timers.fire('linger');
  await ended;
  t.ok(server.isClosed);
  t.equal(await client.closed(), '');
});

t.test('drain waits for a client that reads slowly and reports a closed one', async (t) => {
  const { server, client } = await pair(t, { writeHighWaterMark: 64 * 1024 });
  client.socket.pause();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let writes = 0;
  while (!server.needsDrain && writes < 10_000) {
    server.write(chunk);
    writes++;
  }
  t.ok(server.needsDrain, 'queue grew past the mark');
  const drained = server.drain();
  client.socket.resume();
  t.equal(await drained, 'drained');
  client.destroy();
  await server.whenClosed();
  t.equal(await server.drain(), 'closed');
});
