import t from 'tap';
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { toStoredBuffer, toWireBuffer } from '../../../src/storage/wire.ts';
import { fixtureMessages, makeMaildir, referenceWire, sizedName } from '../../helpers/maildir-tree.ts';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

const fixtures = fixtureMessages();

for (const kind of STORE_KINDS) {
  t.test(`${kind}: RETR sends every fixture byte-identical in wire form, sized as LIST said`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: fixtures.map((f) => f.bytes) } });
    const client = await h.login();
    for (const [i, fixture] of fixtures.entries()) {
      const expected = toWireBuffer(toStoredBuffer(fixture.bytes));
      await client.command(`LIST ${i + 1}`, `+OK ${i + 1} ${expected.length}`);
      client.send(`RETR ${i + 1}`);
      await client.expect(`+OK ${expected.length} octets`);
      t.same(await client.body(), expected, fixture.file);
    }
    t.equal(h.events.filter((e) => e.name === 'retrieve').length, fixtures.length);
    t.match(h.events.find((e) => e.name === 'retrieve')?.payload, { user: 'alice', number: 1 });
  });

  t.test(`${kind}: a large message streams (past the small-message path), then pipelined replies follow`, async (t) => {
    const line = `${'x'.repeat(70)}\n.${'y'.repeat(20)}\n`;
    const big = `Subject: big\n\n${line.repeat(60_000)}`; // ~5.5 MB, many dot-lines
    const h = await startPop3(t, {
      kind,
      mail: { alice: [big, 'Subject: small\n\nhi\n'] },
      server: { limits: { writeHighWaterMark: 64 * 1024 } },
    });
    const client = await h.login();
    client.send('RETR 1', 'RETR 2', 'NOOP');
    const expected = toWireBuffer(Buffer.from(big));
    await client.expect(`+OK ${expected.length} octets`);
    const body = await client.body();
    t.equal(body.length, expected.length);
    t.ok(body.equals(expected), 'byte-identical after unstuffing');
    await client.expect(/^\+OK \d+ octets$/);
    t.equal((await client.body()).toString(), 'Subject: small\r\n\r\nhi\r\n');
    await client.expect('+OK');
  });

  t.test(`${kind}: RETR argument checks`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(2) } });
    const client = await h.login();
    await client.command('RETR', '-ERR Message number required');
    await client.command('RETR 0', '-ERR No such message, only 2 messages in maildrop');
    await client.command('RETR 3', '-ERR No such message, only 2 messages in maildrop');
    await client.command('RETR one', '-ERR Invalid message number');
    await client.command('RETR 1 2', '-ERR Too many arguments');
    await client.command('DELE 2', /^\+OK/);
    await client.command('RETR 2', '-ERR Message 2 already deleted');
  });
}

t.test('maildir: files written by other MDAs (CRLF, no W=) are sent as their wire form', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const names = fixtures.map((f, i) => [`${1_700_000_000 + i}.M1P1Q${i}.other:2,`, f] as const);
  makeMaildir(join(h.root as string, 'alice'), {
    cur: Object.fromEntries(names.map(([name, f], i) => [i % 2 === 0 ? name : sizedName(name.replace(':2,', ''), f.bytes) + ':2,', f.bytes])),
  });
  const client = await h.login();
  for (const [i, fixture] of fixtures.entries()) {
    const expected = referenceWire(fixture.bytes);
    client.send(`RETR ${i + 1}`);
    await client.expect(`+OK ${expected.length} octets`);
    t.same(await client.body(), expected, fixture.file);
  }
});

t.test('maildir: a message removed by another program gets -ERR, not a broken reply', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(2) } });
  const client = await h.login();
  const dir = join(h.root as string, 'alice', 'new');
  // Message 1 is whichever file the listing put first: find it by its UIDL (its name's unique part).
  const uidl = (await client.command('UIDL 1', /^\+OK 1 \S+$/)).split(' ')[2] as string;
  const first = readdirSync(dir).find((name) => name === uidl || name.startsWith(`${uidl},`) || name.startsWith(`${uidl}:`));
  t.ok(first, `the file of UIDL ${uidl}`);
  unlinkSync(join(dir, first as string));
  await client.command('RETR 1', '-ERR [SYS/PERM] Message is no longer available (removed by another program)');
  client.send('RETR 2');
  await client.expect(/^\+OK/);
  await client.body();
  await client.command('QUIT', /^\+OK/);
});
