import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { ProtocolServer, type ConnectionHandler, type ServerLimits } from '../../src/protocol/server.ts';
import type { Connection, ConnectionSettings } from '../../src/protocol/connection.ts';
import { TlsContextHolder } from '../../src/protocol/tls.ts';
import { realTimers, type Timers } from '../../src/protocol/timers.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { LineClient } from '../helpers/pop3-client.ts';
import { ManualTimers } from '../helpers/pop3-timers.ts';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/tls/${name}`, import.meta.url));
const ca = fixture('ca.crt');

/**
 * A tiny line protocol: greeting, `+OK <line>` per line; `WAIT` holds the
 * command until the test releases it; a shutdown is answered and ends the session.
 */
function echoHandler() {
  const waiting: (() => void)[] = [];
  const ended: string[] = [];
  let onWait: () => void = () => {};
  const handler: ConnectionHandler = {
    async session(conn: Connection) {
      conn.write(`+OK hello ${conn.isTls ? 'tls' : 'plain'}\r\n`);
      for (;;) {
        const event = await conn.readLine();
        if (event.kind === 'line') {
          const text = event.line.toString();
          if (text === 'WAIT') {
            await new Promise<void>((resolve) => {
              waiting.push(resolve);
              onWait();
            });
          }
          conn.write(`+OK ${text}\r\n`);
          continue;
        }
        if (event.kind === 'shutdown') conn.write('-ERR shutting down\r\n');
        ended.push(event.kind);
        await conn.end();
        return;
      }
    },
    refusal: (reason) => `-ERR [SYS/TEMP] ${reason}\r\n`,
  };
  return {
    handler,
    ended,
    release: () => waiting.splice(0).forEach((f) => f()),
    waitingCommand: () =>
      waiting.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (onWait = resolve)),
  };
}

function start(t: Test, handler: ConnectionHandler, limits: Partial<ServerLimits> = {}, timers: Timers = realTimers) {
  const connection: ConnectionSettings = {
    maxLineLength: 255,
    idleTimeoutMs: 600_000,
    lineTimeoutMs: 60_000,
    handshakeTimeoutMs: 30_000,
    writeHighWaterMark: 256 * 1024,
    lingerMs: 1_000,
    timers,
  };
  const server = new ProtocolServer({
    protocol: 'test',
    limits: { maxConnections: 0, maxConnectionsPerIp: 0, closeTimeoutMs: 10_000, ...limits },
    connection,
    handler,
    logger: silentLogger(),
    tls: new TlsContextHolder({ cert: fixture('localhost.crt'), key: fixture('localhost.key') }),
  });
  t.teardown(() => server.close());
  return server;
}

t.test('per-IP and global limits answer and close; a freed slot is reused', async (t) => {
  const echo = echoHandler();
  const server = start(t, echo.handler, { maxConnectionsPerIp: 2 });
  const { port } = await server.listen(0, '127.0.0.1');
  const a = await LineClient.connect(port);
  await a.expect('+OK hello plain');
  const b = await LineClient.connect(port);
  await b.expect('+OK hello plain');
  const c = await LineClient.connect(port);
  await c.expect('-ERR [SYS/TEMP] per-ip-limit');
  t.equal(await c.closed(), '');
  a.end();
  await a.closed();
  const d = await LineClient.connect(port);
  await d.expect('+OK hello plain');
  b.destroy();
  d.destroy();

  const global = start(t, echoHandler().handler, { maxConnections: 1 });
  const g = await global.listen(0, '127.0.0.1');
  const first = await LineClient.connect(g.port);
  await first.expect('+OK hello plain');
  const second = await LineClient.connect(g.port);
  await second.expect('-ERR [SYS/TEMP] global-limit');
  await second.closed();
  first.destroy();
});

t.test('close() lets the running command finish, answers idle sessions, then resolves', async (t) => {
  const echo = echoHandler();
  const server = start(t, echo.handler);
  const { port } = await server.listen(0, '127.0.0.1');
  const busy = await LineClient.connect(port);
  await busy.expect('+OK hello plain');
  const idle = await LineClient.connect(port);
  await idle.expect('+OK hello plain');
  busy.send('WAIT', 'NEVER');
  await echo.waitingCommand();
  const closing = server.close();
  t.ok(server.isClosing);
  await idle.expect('-ERR shutting down');
  await idle.closed();
  echo.release();
  await busy.expect('+OK WAIT');
  await busy.expect('-ERR shutting down');
  await busy.closed();
  await closing;
  t.same(echo.ended.sort(), ['shutdown', 'shutdown']);
  t.equal(server.connectionCount, 0);
  await t.rejects(server.listen(0, '127.0.0.1'), /closed/);
});

t.test('close() drops sessions still busy when the close timeout fires', async (t) => {
  const timers = new ManualTimers();
  const echo = echoHandler();
  const server = start(t, echo.handler, { closeTimeoutMs: 5_000 }, timers);
  const { port } = await server.listen(0, '127.0.0.1');
  const stuck = await LineClient.connect(port);
  await stuck.expect('+OK hello plain');
  stuck.send('WAIT');
  await echo.waitingCommand();
  const closing = server.close();
  await timers.waitFor('close');
  timers.fire('close');
  await stuck.closed();
  echo.release();
  await closing;
  t.equal(server.connectionCount, 0);
});

t.test('an implicit-TLS listener handshakes first; plain and TLS listeners share one server', async (t) => {
  const echo = echoHandler();
  const server = start(t, echo.handler);
  const secure = await server.listen(0, '127.0.0.1', { implicitTls: true });
  const plain = await server.listen(0, '127.0.0.1');
  const a = await LineClient.connect(secure.port, { tls: { ca } });
  await a.expect('+OK hello tls');
  await a.command('PING', '+OK PING');
  const b = await LineClient.connect(plain.port);
  await b.expect('+OK hello plain');
  t.equal(server.connectionCount, 2);
  a.end();
  b.end();
  await Promise.all([a.closed(), b.closed()]);
});

t.test('a client that never finishes the TLS handshake is dropped at the handshake timeout', async (t) => {
  const timers = new ManualTimers();
  const server = start(t, echoHandler().handler, {}, timers);
  const { port } = await server.listen(0, '127.0.0.1', { implicitTls: true });
  const silent = await LineClient.connect(port);
  await timers.waitFor('handshake');
  timers.fire('handshake');
  t.equal(await silent.closed(), '');
});

t.test('an implicit-TLS listener without a certificate is refused', async (t) => {
  const server = new ProtocolServer({
    protocol: 'test',
    limits: { maxConnections: 0, maxConnectionsPerIp: 0, closeTimeoutMs: 1000 },
    connection: {
      maxLineLength: 255,
      idleTimeoutMs: 1000,
      lineTimeoutMs: 1000,
      handshakeTimeoutMs: 1000,
      writeHighWaterMark: 1024,
      lingerMs: 1000,
      timers: realTimers,
    },
    handler: echoHandler().handler,
    logger: silentLogger(),
  });
  await t.rejects(server.listen(0, '127.0.0.1', { implicitTls: true }), /needs a TLS certificate/);
  await server.close();
});
