import t from 'tap';
import { createHash } from 'node:crypto';
import { messages, startPop3 } from '../../helpers/pop3-harness.ts';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const timestamp = (greeting: string): string => /<[^>]+>/.exec(greeting)?.[0] ?? '';

t.test('APOP logs in with md5(timestamp + secret); a wrong digest is an [AUTH] failure', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(1) }, server: { apop: true, isLoopbackSecure: false } });
  const { client, greeting } = await h.connect();
  const stamp = timestamp(greeting);
  t.not(stamp, '');
  await client.command(`APOP alice ${md5(`${stamp}wrong`)}`, '-ERR [AUTH] Authentication failed');
  await client.command(`APOP alice ${md5(`${stamp}secret`).toUpperCase()}`, /^\+OK Logged in, maildrop has 1 message /);
  t.match(h.events.find((e) => e.name === 'login')?.payload, { user: 'alice', mechanism: 'APOP' });
});

t.test('APOP argument checks', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { apop: true } });
  const { client } = await h.connect();
  await client.command('APOP', '-ERR APOP needs a name and a digest');
  await client.command('APOP alice', '-ERR APOP needs a name and a digest');
  await client.command('APOP alice 1234', '-ERR Invalid APOP digest');
  await client.command(`APOP alice ${'g'.repeat(32)}`, '-ERR Invalid APOP digest');
  await client.command(`APOP alice ${'a'.repeat(32)} extra`, '-ERR Too many arguments');
  await client.command(`APOP jürgen ${'a'.repeat(32)}`, '-ERR [UTF8] UTF-8 user names need the UTF8 command first');
});

t.test('APOP is not offered when disabled, or when no user has a PLAIN password', async (t) => {
  const off = await startPop3(t, { kind: 'maildir' });
  const { client, greeting } = await off.connect();
  t.equal(timestamp(greeting), '');
  await client.command(`APOP alice ${'a'.repeat(32)}`, '-ERR APOP is not available on this server');
  const hashed = await startPop3(t, {
    kind: 'maildir',
    users: [{ name: 'dave', password: '{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=' }],
    server: { apop: true },
  });
  const second = await hashed.connect();
  t.equal(timestamp(second.greeting), '', 'no timestamp: nobody could use it');
});
