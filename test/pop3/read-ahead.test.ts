import t, { type Test } from 'tap';
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ReadAhead, readAll } from '../../src/pop3/read-ahead.ts';
import { Readable } from 'node:stream';
import { createStore, messages, startPop3, STORE_KINDS } from '../helpers/pop3-harness.ts';
import { FsRecorder } from '../helpers/fs-recorder.ts';

async function maildrop(t: Test, kind: 'memory' | 'maildir', bodies: string[]) {
  const { store, root } = await createStore(t, kind);
  const user = { name: 'alice' };
  for (const body of bodies) await store.deliver({ recipients: [user], content: Buffer.from(body) });
  const drop = await store.openMaildrop(user);
  t.teardown(async () => {
    await drop.release();
    await store.close();
  });
  return { drop, root };
}

for (const kind of STORE_KINDS) {
  t.test(`${kind}: messages read ahead are handed over once, framed`, async (t) => {
    const { drop } = await maildrop(t, kind, messages(4));
    const ahead = new ReadAhead(drop, { maxMessages: 16, maxBytes: 1 << 20, maxMessageBytes: 1 << 16 });
    ahead.start([1, 2, 1]);
    t.equal(ahead.size, 2, 'each message once');
    const second = ahead.take(1);
    t.ok(second);
    t.equal((await second)?.bytes.toString(), 'Subject: message 2\r\n\r\nbody of message 2\r\n.\r\n', 'stuffed and terminated');
    t.equal((await second)?.wireSize, 'Subject: message 2\r\n\r\nbody of message 2\r\n'.length);
    t.equal(ahead.take(1), undefined, 'taken once');
    t.equal(ahead.take(0), undefined, 'never started');
    await ahead.clear();
    t.equal(ahead.size, 0);
    t.equal(ahead.take(2), undefined, 'cleared');
  });

  t.test(`${kind}: the budget limits messages, octets and message size`, async (t) => {
    const { drop } = await maildrop(t, kind, [...messages(3), 'x'.repeat(5000)]);
    const few = new ReadAhead(drop, { maxMessages: 2, maxBytes: 1 << 20, maxMessageBytes: 1 << 16 });
    few.start([0, 1, 2]);
    t.equal(few.size, 2);
    const small = new ReadAhead(drop, { maxMessages: 16, maxBytes: 100, maxMessageBytes: 1 << 16 });
    small.start([0, 1, 2]);
    t.equal(small.size, 2, '41 + 41 octets fit in 100, a third does not');
    const noBig = new ReadAhead(drop, { maxMessages: 16, maxBytes: 1 << 20, maxMessageBytes: 1000 });
    noBig.start([3, 99]);
    t.equal(noBig.size, 0, 'large and unknown messages are not read ahead');
    await Promise.all([few.clear(), small.clear(), noBig.clear()]);
  });
}

t.test('maildir: a read that failed is reported by the RETR that takes it', async (t) => {
  const { drop, root } = await maildrop(t, 'maildir', messages(2));
  const dir = join(root as string, 'alice', 'new');
  for (const name of readdirSync(dir)) unlinkSync(join(dir, name));
  const ahead = new ReadAhead(drop, { maxMessages: 16, maxBytes: 1 << 20, maxMessageBytes: 1 << 16 });
  ahead.start([0]);
  await t.rejects(ahead.take(0) as Promise<unknown>, { name: 'StorageError', kind: 'not-found' });
  ahead.start([1]);
  await ahead.clear();
  t.pass('an untaken failure is not an unhandled rejection');
});

t.test('readAll joins chunks', async (t) => {
  t.equal((await readAll(Readable.from([Buffer.from('a'), Buffer.from('bc')]))).toString(), 'abc');
  t.equal((await readAll(Readable.from([], { objectMode: false }))).length, 0);
});

for (const kind of STORE_KINDS) {
  t.test(`${kind}: pipelined and sequential RETRs with DELE in between give the right bytes`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(6) } });
    const client = await h.login();
    client.send('RETR 1', 'RETR 3', 'DELE 2', 'RETR 2', 'RETR 4', 'DELE 5', 'RETR 5', 'TOP 6 0', 'RETR 6');
    for (const n of [1, 3]) {
      await client.expect('+OK 41 octets');
      t.equal((await client.body()).toString(), `Subject: message ${n}\r\n\r\nbody of message ${n}\r\n`);
    }
    await client.expect('+OK Message 2 deleted');
    await client.expect('-ERR Message 2 already deleted');
    await client.expect('+OK 41 octets');
    t.match((await client.body()).toString(), /message 4/);
    await client.expect('+OK Message 5 deleted');
    await client.expect('-ERR Message 5 already deleted');
    await client.expect('+OK Top of message follows');
    t.equal((await client.body()).toString(), 'Subject: message 6\r\n\r\n');
    await client.expect('+OK 41 octets');
    t.match((await client.body()).toString(), /message 6/);
    const ended = h.sessionEnd();
    await client.command('QUIT', /^\+OK .*\(2 messages deleted\)$/);
    t.match(await ended, { retrieved: 4, deleted: 2 });
  });
}

t.test('maildir: the read-ahead after a RETR never reads a file once QUIT started UPDATE', async (t) => {
  const fs = new FsRecorder();
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(4) }, maildir: { fs } });
  const client = await h.login();
  const ended = h.sessionEnd();
  fs.reset();
  // RETR and QUIT in one write: the sequential read-ahead after RETR 1 is due on
  // the next turn of the event loop, by which time QUIT may be committing.
  client.send('RETR 1', 'QUIT');
  await client.expect(/^\+OK/);
  await client.body();
  await client.expect(/^\+OK/);
  await ended;
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  const reads = fs.ops('readSync').map((c) => c.seq);
  const moves = [...fs.ops('link'), ...fs.ops('rename')].map((c) => c.seq);
  t.ok(reads.length >= 1, 'message 1 was read');
  t.ok(moves.length >= 1, 'the Seen step moved message 1');
  t.ok(Math.max(...reads) < Math.min(...moves), 'every read came before UPDATE touched the maildrop');
});
