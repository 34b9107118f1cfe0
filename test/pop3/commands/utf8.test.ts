import t from 'tap';
import { messages, startPop3 } from '../../helpers/pop3-harness.ts';

t.test('UTF8 switches to UTF-8 mode in AUTHORIZATION only', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { 'jürgen': messages(1) } });
  const { client } = await h.connect();
  await client.command('UTF8 please', '-ERR This command takes no arguments');
  await client.command('UTF8', '+OK UTF8 enabled');
  await client.command('USER jürgen', '+OK');
  await client.command('PASS pässword', /^\+OK Logged in, maildrop has 1 message/);
  await client.command('UTF8', '-ERR UTF8 is not valid in the TRANSACTION state');
  client.send('RETR 1');
  await client.expect(/^\+OK/);
  t.match((await client.body()).toString(), /message 1/);
});
