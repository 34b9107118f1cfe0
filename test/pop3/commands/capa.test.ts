import t from 'tap';
import { startPop3, TEST_CA, TEST_TLS } from '../../helpers/pop3-harness.ts';

async function capa(client: { send(...l: string[]): unknown; expect(p: string): Promise<string>; lines(): Promise<string[]> }) {
  client.send('CAPA');
  await client.expect('+OK Capability list follows');
  return client.lines();
}

t.test('CAPA in AUTHORIZATION lists exactly what is on', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  t.same(await capa(client), [
    'TOP',
    'UIDL',
    'USER',
    'SASL PLAIN LOGIN',
    'UTF8 USER',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'PIPELINING',
    'EXPIRE NEVER',
    'IMPLEMENTATION maildird',
  ]);
  await client.command('CAPA now', '-ERR This command takes no arguments');
});

t.test('CAPA: SASL CRAM-MD5 only with cramMd5 on (users with PLAIN passwords exist here)', async (t) => {
  const off = await startPop3(t, { kind: 'memory' });
  const plain = await off.connect();
  t.ok((await capa(plain.client)).includes('SASL PLAIN LOGIN'), 'off by default');
  await plain.client.command('AUTH CRAM-MD5', '-ERR Unsupported authentication mechanism');
  const on = await startPop3(t, { kind: 'memory', server: { cramMd5: true } });
  const cram = await on.connect();
  t.ok((await capa(cram.client)).includes('SASL PLAIN LOGIN CRAM-MD5'), 'on when turned on');
  await cram.client.command('AUTH CRAM-MD5', /^\+ /);
});

t.test('STLS is listed only with TLS configured, before encryption, in AUTHORIZATION', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { tls: TEST_TLS, loginDelaySeconds: 900, implementation: 'test 1.0' } });
  const { client } = await h.connect();
  const before = await capa(client);
  t.ok(before.includes('STLS'));
  t.ok(before.includes('LOGIN-DELAY 900'));
  t.ok(before.includes('IMPLEMENTATION test 1.0'));
  await client.command('STLS', '+OK Begin TLS negotiation');
  await client.startTls(TEST_CA);
  const after = await capa(client);
  t.notOk(after.includes('STLS'), 'not after STLS');
  await client.command('USER alice', '+OK');
  await client.command('PASS secret', /^\+OK/);
  const inTransaction = await capa(client);
  t.notOk(inTransaction.includes('STLS'));
  t.ok(inTransaction.includes('TOP') && inTransaction.includes('UIDL'));
});

t.test('USER is not listed where plaintext passwords are refused', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false } });
  const { client } = await h.connect();
  t.notOk((await capa(client)).includes('USER'));
  const allowed = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false, allowPlaintextAuth: true } });
  const second = await allowed.connect();
  t.ok((await capa(second.client)).includes('USER'));
});
