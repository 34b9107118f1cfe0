import t from 'tap';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

for (const kind of STORE_KINDS) {
  t.test(`${kind}: RSET unmarks deletions; DELE + RSET + QUIT keeps everything`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(3) } });
    const client = await h.login();
    await client.command('DELE 1', /^\+OK/);
    await client.command('DELE 3', /^\+OK/);
    await client.command('STAT', '+OK 1 41');
    await client.command('RSET', '+OK Maildrop has 3 messages (123 octets)');
    await client.command('LIST 1', '+OK 1 41');
    await client.command('RSET x', '-ERR This command takes no arguments');
    await client.command('QUIT', 'maildird POP3 server signing off'.replace(/^/, '+OK '));
    await client.closed();
    const again = await h.login();
    await again.command('STAT', '+OK 3 123');
  });
}
