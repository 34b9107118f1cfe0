import t from 'tap';
import { ConfigError } from '../../src/errors.ts';
import { createPop3Server, Pop3Server } from '../../src/pop3/server.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';
import { LineClient } from '../helpers/pop3-client.ts';
import { createStore, messages, startPop3, TEST_CA, TEST_TLS, tlsFixture } from '../helpers/pop3-harness.ts';

t.test('options are checked once, at creation', async (t) => {
  const { store } = await createStore(t, 'maildir');
  const users = UserDatabase.fromEntries([{ name: 'alice', password: '{PLAIN}x' }]);
  t.teardown(() => store.close());
  t.throws(() => createPop3Server({ store, users, greeting: 'hi <there>' }), ConfigError);
  t.throws(() => createPop3Server({ store, users, greeting: 'two\r\nlines' }), ConfigError);
  t.throws(() => createPop3Server({ store, users, hostname: 'has space' }), ConfigError);
  t.throws(() => createPop3Server({ store, users, limits: { idleTimeoutMs: -1 } }), ConfigError);
  t.throws(() => createPop3Server({ store, users, limits: { maxLineLength: 4 } }), ConfigError);
  t.throws(() => createPop3Server({ store, users, loginDelaySeconds: 1.5 }), ConfigError);
  t.throws(() => createPop3Server({ store, users, tls: { cert: 'x', key: 'y' } }), ConfigError);
  const server = createPop3Server({ store, users, limits: { maxLineLength: undefined as unknown as number } });
  t.ok(server instanceof Pop3Server);
  t.equal(server.config.limits.maxLineLength, 255, 'undefined limits keep their defaults');
  t.equal(server.config.limits.idleTimeoutMs, 600_000, 'RFC 1939: at least 10 minutes');
  t.same(server.config.saslMechanisms, ['PLAIN', 'LOGIN', 'CRAM-MD5']);
  t.throws(() => server.updateTls(TEST_TLS), ConfigError, 'no TLS to update');
  await t.rejects(server.listen(0, '127.0.0.1', { implicitTls: true }), /TLS certificate/);
  await server.close();
});

t.test('connection limits answer -ERR [SYS/TEMP] and close', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { limits: { maxConnectionsPerIp: 1 } } });
  const first = await h.connect();
  const second = await LineClient.connect(h.port);
  await second.expect('-ERR [SYS/TEMP] Too many connections from your address, try again later');
  t.equal(await second.closed(), '');
  await first.client.command('QUIT', /^\+OK/);
  const global = await startPop3(t, { kind: 'maildir', server: { limits: { maxConnections: 1 } } });
  await global.connect();
  const over = await LineClient.connect(global.port);
  await over.expect('-ERR [SYS/TEMP] Too many connections, try again later');
  await over.closed();
});

t.test('one server, plain and implicit-TLS listeners; the certificate can be swapped', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(1) }, server: { tls: TEST_TLS } });
  const secure = await h.server.listen(0, '127.0.0.1', { implicitTls: true });
  const a = await LineClient.connect(secure.port, { tls: { ca: TEST_CA } });
  await a.expect(/^\+OK/);
  await a.command('USER alice', '+OK');
  await a.command('PASS secret', /^\+OK Logged in/);
  await a.command('QUIT', /^\+OK/);
  h.server.updateTls({ cert: tlsFixture('selfsigned.crt'), key: tlsFixture('selfsigned.key') });
  const b = await LineClient.connect(secure.port, { tls: { ca: tlsFixture('selfsigned.crt') } });
  await b.expect(/^\+OK/);
  b.destroy();
  await t.rejects(LineClient.connect(secure.port, { tls: { ca: TEST_CA } }), 'the old chain is no longer served');
});

t.test('events: login, retrieve, delete, session-end, with a throwing listener ignored', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(2) } });
  h.server.on('login', () => {
    throw new Error('listener bug');
  });
  const client = await h.login();
  client.send('RETR 2');
  await client.expect(/^\+OK/);
  await client.body();
  await client.command('DELE 1', /^\+OK/);
  const ended = h.sessionEnd();
  await client.command('QUIT', /^\+OK/);
  const summary = await ended;
  t.same(
    h.events.map((e) => e.name),
    ['login', 'retrieve', 'delete', 'session-end'],
  );
  t.match(summary, { user: 'alice', remoteAddress: '127.0.0.1', isTls: false, retrieved: 1, deleted: 1, reason: 'quit' });
  t.ok(summary.bytesSent > 41);
  t.ok(summary.durationMs >= 0);
});

t.test('close() with no connections resolves; listen after close is refused', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  await h.server.close();
  await h.server.close();
  await t.rejects(h.server.listen(0, '127.0.0.1'), /closed/);
});
