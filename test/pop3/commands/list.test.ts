import t from 'tap';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

for (const kind of STORE_KINDS) {
  t.test(`${kind}: LIST and LIST n`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: [...messages(2), 'x\n'] } });
    const client = await h.login();
    client.send('LIST');
    await client.expect('+OK 3 messages (85 octets)');
    t.same(await client.lines(), ['1 41', '2 41', '3 3']);
    await client.command('LIST 3', '+OK 3 3');
    await client.command('LIST 0', '-ERR No such message, only 3 messages in maildrop');
    await client.command('LIST 4', '-ERR No such message, only 3 messages in maildrop');
    await client.command('LIST 99999999999999999999', '-ERR No such message, only 3 messages in maildrop');
    await client.command('LIST x', '-ERR Invalid message number');
    await client.command('LIST 1x', '-ERR Invalid message number');
    await client.command('LIST -1', '-ERR Invalid message number');
    await client.command('LIST +1', '-ERR Invalid message number');
    await client.command('LIST 1 2', '-ERR Too many arguments');
    await client.command('LIST 01', '+OK 1 41');
    await client.command('LIST 2 ', '+OK 2 41');
    await client.command('DELE 1', /^\+OK/);
    await client.command('LIST 1', '-ERR Message 1 already deleted');
    client.send('LIST');
    await client.expect('+OK 2 messages (44 octets)');
    t.same(await client.lines(), ['2 41', '3 3']);
    const empty = await h.login('bob', 'hunter2');
    empty.send('LIST');
    await empty.expect('+OK 0 messages (0 octets)');
    t.same(await empty.lines(), []);
    await empty.command('LIST 1', '-ERR No such message, only 0 messages in maildrop');
  });

  t.test(`${kind}: a long listing streams in batches`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: Array.from({ length: 3000 }, (_, i) => `n: ${i}\n`) } });
    const client = await h.login();
    client.send('LIST', 'NOOP');
    await client.expect(/^\+OK 3000 messages/);
    const lines = await client.lines();
    t.equal(lines.length, 3000);
    t.equal(lines[2999], `3000 ${'n: 2999\r\n'.length}`);
    await client.expect('+OK');
  });
}
