import t from 'tap';
import { startPop3 } from '../../helpers/pop3-harness.ts';

t.test('USER answers +OK whether or not the user exists', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  await client.command('USER alice', '+OK');
  await client.command('USER nobody-here', '+OK');
  await client.command('USER', '-ERR User name required');
  await client.command('USER    ', '-ERR User name required');
});

t.test('USER is refused on a non-secure connection unless plaintext is allowed', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false } });
  const { client } = await h.connect();
  await client.command(
    'USER alice',
    '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections',
  );
  const open = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false, allowPlaintextAuth: true } });
  const second = await open.connect();
  await second.client.command('USER alice', '+OK');
});

t.test('a UTF-8 user name needs the UTF8 command first (RFC 6856)', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  await client.command('USER jürgen', '-ERR [UTF8] UTF-8 user names need the UTF8 command first');
  await client.command('UTF8', '+OK UTF8 enabled');
  await client.command('USER jürgen', '+OK');
  await client.command('PASS pässword', /^\+OK Logged in/);
});
