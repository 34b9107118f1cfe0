import t from 'tap';
import { toStoredBuffer, topOfMessageBuffer } from '../../../src/storage/wire.ts';
import { fixtureMessages } from '../../helpers/maildir-tree.ts';
import { startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

const fixtures = fixtureMessages();

for (const kind of STORE_KINDS) {
  t.test(`${kind}: TOP n k sends the header, the blank line and k body lines`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: fixtures.map((f) => f.bytes) } });
    const client = await h.login();
    for (const [i, fixture] of fixtures.entries()) {
      for (const lines of [0, 1, 3, 1000]) {
        client.send(`TOP ${i + 1} ${lines}`);
        await client.expect('+OK Top of message follows');
        t.same(await client.body(), topOfMessageBuffer(toStoredBuffer(fixture.bytes), lines), `${fixture.file} ${lines}`);
      }
    }
    t.equal(h.events.filter((e) => e.name === 'retrieve').length, 0, 'TOP is not a retrieval');
  });

  t.test(`${kind}: TOP argument checks`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: ['a: b\n\nbody\n'] } });
    const client = await h.login();
    await client.command('TOP', '-ERR Message number required');
    await client.command('TOP 1', '-ERR Number of lines required');
    await client.command('TOP 1 x', '-ERR Invalid number of lines');
    await client.command('TOP 1 -1', '-ERR Invalid number of lines');
    await client.command('TOP 1 1 1', '-ERR Too many arguments');
    await client.command('TOP 2 1', '-ERR No such message, only 1 message in maildrop');
    client.send('TOP 1 99999999999999999999');
    await client.expect('+OK Top of message follows');
    t.equal((await client.body()).toString(), 'a: b\r\n\r\nbody\r\n');
  });
}
