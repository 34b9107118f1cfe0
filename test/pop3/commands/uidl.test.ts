import t from 'tap';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

const UIDL_CHARS = /^[\x21-\x7e]{1,70}$/;

for (const kind of STORE_KINDS) {
  t.test(`${kind}: UIDL lists stable unique-ids; UIDL n gives one`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(3) } });
    const client = await h.login();
    client.send('UIDL');
    await client.expect('+OK Unique-ID listing follows');
    const lines = await client.lines();
    t.equal(lines.length, 3);
    const ids = lines.map((l, i) => {
      const [n, id] = l.split(' ');
      t.equal(n, String(i + 1));
      t.match(id, UIDL_CHARS);
      return id as string;
    });
    t.equal(new Set(ids).size, 3, 'unique');
    await client.command('UIDL 2', `+OK 2 ${ids[1]}`);
    await client.command('UIDL 4', '-ERR No such message, only 3 messages in maildrop');
    await client.command('UIDL two', '-ERR Invalid message number');
    await client.command('UIDL 1 2', '-ERR Too many arguments');
    await client.command('QUIT', /^\+OK/);
    await client.closed();
    const again = await h.login();
    again.send('UIDL');
    await again.expect(/^\+OK/);
    t.same((await again.lines()).map((l) => l.split(' ')[1]), ids, 'same UIDLs in the next session');
  });
}
