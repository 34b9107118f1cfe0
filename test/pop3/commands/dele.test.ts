import t from 'tap';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

for (const kind of STORE_KINDS) {
  t.test(`${kind}: DELE marks; QUIT removes; the next session does not see them`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(3) } });
    const client = await h.login();
    client.send('UIDL');
    await client.expect(/^\+OK/);
    const uidls = (await client.lines()).map((l) => l.split(' ')[1]);
    await client.command('DELE 1', '+OK Message 1 deleted');
    await client.command('DELE 1', '-ERR Message 1 already deleted');
    await client.command('DELE 3', '+OK Message 3 deleted');
    await client.command('DELE', '-ERR Message number required');
    await client.command('DELE 4', '-ERR No such message, only 3 messages in maildrop');
    await client.command('DELE x', '-ERR Invalid message number');
    await client.command('DELE 2 3', '-ERR Too many arguments');
    const ended = h.sessionEnd();
    await client.command('QUIT', '+OK maildird POP3 server signing off (2 messages deleted)');
    t.equal((await ended).deleted, 2);
    const deleteEvents = h.events.filter((e) => e.name === 'delete');
    t.same(deleteEvents.map((e) => e.payload), [
      { sessionId: '1', user: 'alice', messages: [{ number: 1, uidl: uidls[0] }, { number: 3, uidl: uidls[2] }] },
    ]);
    const again = await h.login();
    again.send('UIDL');
    await again.expect(/^\+OK/);
    t.same(await again.lines(), [`1 ${uidls[1]}`]);
  });
}
