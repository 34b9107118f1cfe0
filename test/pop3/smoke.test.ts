import t from 'tap';
import { startPop3, messages } from '../helpers/pop3-harness.ts';

t.test('smoke', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(3) } });
  const c = await h.login();
  await c.command('STAT', /^\+OK 3 \d+$/);
  c.send('LIST');
  await c.expect(/^\+OK 3 messages/);
  t.equal((await c.lines()).length, 3);
  c.send('RETR 1');
  await c.expect(/^\+OK \d+ octets$/);
  t.equal((await c.body()).toString(), 'Subject: message 1\r\n\r\nbody of message 1\r\n');
  await c.command('DELE 1', '+OK Message 1 deleted');
  await c.command('QUIT', /^\+OK maildird POP3 server signing off \(1 message deleted\)$/);
  await c.closed();
  const c2 = await h.login();
  await c2.command('STAT', /^\+OK 2 \d+$/);
});
