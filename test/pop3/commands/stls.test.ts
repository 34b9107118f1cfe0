import t from 'tap';
import { messages, startPop3, TEST_CA, TEST_TLS } from '../../helpers/pop3-harness.ts';

t.test('STLS upgrades the connection; plaintext auth is then allowed', async (t) => {
  const h = await startPop3(t, {
    kind: 'maildir',
    mail: { alice: messages(1) },
    server: { tls: TEST_TLS, isLoopbackSecure: false },
  });
  const { client } = await h.connect();
  await client.command('USER alice', /^-ERR \[AUTH\] Plaintext authentication disallowed/);
  await client.command('STLS', '+OK Begin TLS negotiation');
  await client.startTls(TEST_CA);
  await client.command('STLS', '-ERR Command not permitted when TLS active');
  await client.command('USER alice', '+OK');
  await client.command('PASS secret', /^\+OK Logged in/);
  t.match(h.events.find((e) => e.name === 'login')?.payload, { isTls: true });
  const ended = h.sessionEnd();
  await client.command('QUIT', /^\+OK/);
  t.equal((await ended).isTls, true);
});

t.test('commands pipelined after STLS are discarded, not run after the handshake', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(1) }, server: { tls: TEST_TLS } });
  const { client } = await h.connect();
  client.sendRaw('STLS\r\nUSER alice\r\nPASS secret\r\n');
  await client.expect('+OK Begin TLS negotiation');
  await client.startTls(TEST_CA);
  await client.command('STAT', '-ERR STAT is not valid in the AUTHORIZATION state');
  await client.command('PASS secret', '-ERR No user name given, send USER first');
  t.equal(h.events.filter((e) => e.name === 'login').length, 0);
});

t.test('a USER given before STLS is forgotten', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { tls: TEST_TLS } });
  const { client } = await h.connect();
  await client.command('USER alice', '+OK');
  await client.command('STLS', '+OK Begin TLS negotiation');
  await client.startTls(TEST_CA);
  await client.command('PASS secret', '-ERR No user name given, send USER first');
});

t.test('STLS without TLS configured, with arguments, or in TRANSACTION', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  await client.command('STLS', '-ERR TLS is not available on this server');
  const tls = await startPop3(t, { kind: 'maildir', server: { tls: TEST_TLS } });
  const second = await tls.connect();
  await second.client.command('STLS now', '-ERR This command takes no arguments');
  const logged = await tls.login();
  await logged.command('STLS', '-ERR STLS is not valid in the TRANSACTION state');
});

t.test('an implicit-TLS listener: the greeting comes over TLS and STLS is refused', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { tls: TEST_TLS, isLoopbackSecure: false } });
  const { port } = await h.server.listen(0, '127.0.0.1', { implicitTls: true });
  const { LineClient } = await import('../../helpers/pop3-client.ts');
  const client = await LineClient.connect(port, { tls: { ca: TEST_CA } });
  await client.expect('+OK maildird POP3 server ready');
  await client.command('STLS', '-ERR Command not permitted when TLS active');
  await client.command('USER alice', '+OK');
  await client.command('PASS secret', /^\+OK Logged in/);
  client.destroy();
});

t.test('a failed handshake after STLS ends the session', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { tls: TEST_TLS } });
  const { client } = await h.connect();
  const ended = h.sessionEnd();
  await client.command('STLS', '+OK Begin TLS negotiation');
  client.sendRaw('USER alice\r\n');
  await client.closed();
  t.equal((await ended).reason, 'error');
});
