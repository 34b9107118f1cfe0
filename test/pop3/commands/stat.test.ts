import t from 'tap';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

for (const kind of STORE_KINDS) {
  t.test(`${kind}: STAT counts messages and wire octets, deleted ones left out`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: [...messages(2), 'a\nb\n', ''] } });
    const client = await h.login();
    await client.command('STAT', `+OK 4 ${41 + 41 + 6 + 0}`);
    await client.command('DELE 3', /^\+OK/);
    await client.command('STAT', '+OK 3 82');
    await client.command('STAT 1', '-ERR This command takes no arguments');
    const empty = await h.login('bob', 'hunter2');
    await empty.command('STAT', '+OK 0 0');
  });
}
