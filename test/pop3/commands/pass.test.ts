import t from 'tap';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

t.test('PASS after USER logs in; a wrong or unknown user gets the same [AUTH] reply', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(2) } });
  const { client } = await h.connect();
  await client.command('PASS secret', '-ERR No user name given, send USER first');
  await client.command('USER nobody', '+OK');
  await client.command('PASS secret', '-ERR [AUTH] Authentication failed');
  await client.command('PASS secret', '-ERR No user name given, send USER first', );
  await client.command('USER alice', '+OK');
  await client.command('PASS', '-ERR Password required');
  await client.command('USER alice', '+OK');
  await client.command('PASS secret', '+OK Logged in, maildrop has 2 messages (82 octets)');
  t.match(h.events.find((e) => e.name === 'login')?.payload, {
    user: 'alice',
    mechanism: 'USER',
    remoteAddress: '127.0.0.1',
    isTls: false,
    messages: 2,
    octets: 82,
  });
});

t.test('the password is the rest of the line, spaces included', async (t) => {
  const h = await startPop3(t, {
    kind: 'maildir',
    users: [{ name: 'carol', password: '{PLAIN} two  words ' }],
  });
  const { client } = await h.connect();
  await client.command('USER carol', '+OK');
  await client.command('PASS two  words', '-ERR [AUTH] Authentication failed');
  await client.command('USER carol', '+OK');
  await client.command('PASS  two  words ', /^\+OK Logged in/);
});

t.test('PASS is refused on a non-secure connection; a UTF-8 password needs UTF8', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false } });
  const { client } = await h.connect();
  await client.command('PASS secret', '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections');
  const local = await startPop3(t, { kind: 'maildir' });
  const second = await local.connect();
  await second.client.command('USER jurgen', '+OK');
  await second.client.command('PASS pässword', '-ERR [UTF8] UTF-8 passwords need the UTF8 command first');
});

t.test('a second session for the same user gets [IN-USE]; the first is unaffected', async (t) => {
  for (const kind of STORE_KINDS) {
    const h = await startPop3(t, { kind, mail: { alice: messages(1) } });
    const first = await h.login();
    const { client: second } = await h.connect();
    await second.command('USER alice', '+OK');
    await second.command('PASS secret', '-ERR [IN-USE] Maildrop is locked by another session');
    await second.command('USER bob', '+OK');
    await second.command('PASS hunter2', /^\+OK Logged in/);
    await first.command('STAT', '+OK 1 41');
    await first.command('QUIT', /^\+OK/);
    await first.closed();
    const third = await h.login();
    await third.command('STAT', '+OK 1 41');
  }
});

t.test('LOGIN-DELAY: a login too soon after the last one gets [LOGIN-DELAY]', async (t) => {
  let now = 1_000_000;
  const h = await startPop3(t, { kind: 'maildir', server: { loginDelaySeconds: 60, now: () => now } });
  const first = await h.login();
  await first.command('QUIT', /^\+OK/);
  await first.closed();
  now += 20_000;
  const { client } = await h.connect();
  await client.command('USER alice', '+OK');
  await client.command('PASS secret', '-ERR [LOGIN-DELAY] Minimum time between logins is 60 seconds, try again in 40 seconds');
  await client.command('USER bob', '+OK');
  await client.command('PASS hunter2', /^\+OK Logged in/, );
  now += 40_000;
  const later = await h.login();
  await later.command('NOOP', '+OK');
  t.equal(h.events.filter((e) => e.name === 'login-failed').length, 0, 'a delayed login is not a failed one');
});
