import t from 'tap';
import type { Readable } from 'node:stream';
import { MemoryStore, type MemoryStoreOptions } from '../../src/storage/memory-store.js';
import { isStorageError, StorageError, type StorageErrorKind } from '../../src/errors.js';
import type { MailUser } from '../../src/storage/store.js';
import { toWireBuffer, wireSize } from '../../src/storage/wire.js';
import { storeContract } from './contract.js';

/** A tap pattern for a StorageError of `kind`. */
const failsWith = (kind: StorageErrorKind) => ({ name: 'StorageError', kind });

const alice: MailUser = { name: 'alice' };
const bob: MailUser = { name: 'bob@example.org' };

async function readAll(stream: Readable): Promise<Buffer> {
  return Buffer.concat((await stream.toArray()) as Buffer[]);
}

/** A clock that starts at a fixed instant and moves 1.5 ms per call. */
function steppingClock(startMs = 1_700_000_000_000): () => number {
  let now = startMs;
  return () => (now += 1.5);
}

function makeStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore({ hostname: 'test.example', now: steppingClock(), ...options });
}

storeContract(t, 'MemoryStore', async (_t, { deletionMode }) => {
  // A clock the suite moves (passTime): each reading 1.5 ms after the last.
  let clock = 1_700_000_000_000;
  const store = new MemoryStore({ deletionMode, hostname: 'contract.example', now: () => (clock += 1.5) });
  return {
    store,
    passTime: async () => {
      const moment = Math.ceil(clock) + 1;
      clock = moment + 60_000;
      return new Date(moment);
    },
    user: (name, quota = {}) => ({ name, ...quota }),
    storedMessages: async (user) => store.messages(user).map((m) => m.content),
    trashMessages: async (user) => store.trash(user).map((m) => m.content),
    trashUidls: async (user) => store.trash(user).map((m) => m.uidl),
    seed: async (user, stored) => {
      store.seed(user, stored);
    },
  };
});

const message = (n: number) => Buffer.from(`Subject: message ${n}\r\n\r\nbody ${n}\r\n`);

t.test('delivered messages get Maildir-style base names, and their UIDL is that name', async (t) => {
  const store = makeStore();
  const [outcome] = await store.deliver({ recipients: [alice], content: message(1) });
  t.ok(outcome?.ok);
  const id = outcome?.ok ? outcome.id : '';
  t.match(id, /^1700000000\.M1500P\d+Q\d+\.test\.example,S=27,W=30$/, 'seconds, usec, pid, counter, host, S=, W=');
  const [stored] = store.messages(alice);
  t.equal(stored?.id, id);
  t.equal(stored?.uidl, id, 'a valid unique-id is its own UIDL');
  t.equal(stored?.content.toString(), 'Subject: message 1\n\nbody 1\n', 'CRLF stored as LF');
  t.equal(stored?.size, 30);
  t.equal(stored?.isSeen, false);
});

t.test('a name over 70 octets gets the ~hash UIDL (DESIGN.md "Identity")', async (t) => {
  const store = makeStore({ hostname: `mail-${'x'.repeat(60)}.example.org` });
  const [outcome] = await store.deliver({ recipients: [alice], content: message(1) });
  const [stored] = store.messages(alice);
  t.ok(outcome?.ok && outcome.id.length > 70);
  t.match(stored?.uidl, /^~[0-9a-f]{40}$/);
  const drop = await store.openMaildrop(alice);
  t.equal(drop.messages[0]?.uidl, stored?.uidl);
  await drop.release();
});

t.test('order follows the time in the name, then arrival', async (t) => {
  const store = makeStore();
  await store.deliver({ recipients: [alice], content: message(1) });
  store.seed(alice, 'Subject: old\n\nfrom 2001\n', { id: '1000000000.M1P1Q1.old.example' });
  store.seed(alice, 'Subject: no time\n\nforeign name\n', { id: 'foreign-name' });
  await store.deliver({ recipients: [alice], content: message(2) });
  const subjects = store.messages(alice).map((m) => m.content.toString().split('\n')[0]);
  t.same(subjects, ['Subject: old', 'Subject: message 1', 'Subject: no time', 'Subject: message 2']);
  const drop = await store.openMaildrop(alice);
  t.same(
    drop.messages.map((m) => m.uidl),
    store.messages(alice).map((m) => m.uidl),
  );
  await drop.release();
});

t.test('seed stores bytes as they are (a CRLF file from another MDA) and refuses reused or bad ids', async (t) => {
  const store = makeStore();
  const crlf = Buffer.from('Subject: crlf\r\n\r\nline\r\nlast');
  const seeded = store.seed(alice, crlf, { id: '1715000000.M1P2Q3.other', isSeen: true });
  t.same(seeded.content, crlf, 'no conversion');
  t.equal(seeded.size, wireSize(crlf));
  t.equal(seeded.isSeen, true);
  const drop = await store.openMaildrop(alice);
  t.same(await readAll(await drop.openMessage(0)), toWireBuffer(crlf));
  await drop.release();
  for (const id of ['1715000000.M1P2Q3.other', '', '.dotfile', 'a/b', 'name:2,S']) {
    t.throws(() => store.seed(alice, 'x\n', { id }), failsWith('invalid-name'), JSON.stringify(id));
  }
  t.throws(() => store.seed('../escape', 'x\n'), failsWith('invalid-name'));
});

t.test('trash mode: Trash keeps bytes, base name and UIDL; restore brings the same UIDL back in place', async (t) => {
  const store = makeStore();
  for (let i = 1; i <= 3; i++) await store.deliver({ recipients: [alice], content: message(i) });
  const before = store.messages(alice);
  const drop = await store.openMaildrop(alice);
  t.same(await drop.commit({ deleted: new Set([1]), retrieved: new Set([0, 1]) }), { deleted: 1, seen: 1 });
  const [trashed] = store.trash(alice);
  t.equal(store.trash(alice).length, 1);
  t.equal(trashed?.uidl, before[1]?.uidl);
  t.equal(trashed?.id, before[1]?.id);
  t.same(trashed?.content, before[1]?.content);
  t.equal(trashed?.isSeen, false, 'deleted, so not marked Seen');
  t.same(
    store.messages(alice).map((m) => [m.uidl, m.isSeen]),
    [
      [before[0]?.uidl, true],
      [before[2]?.uidl, false],
    ],
  );
  t.ok(store.restoreFromTrash(alice, before[1]!.uidl));
  t.notOk(store.restoreFromTrash(alice, before[1]!.uidl), 'only once');
  t.same(
    store.messages(alice).map((m) => m.uidl),
    before.map((m) => m.uidl),
    'back in its place',
  );
  t.equal(store.trash(alice).length, 0);
  t.equal(store.deletionMode, 'trash');
});

t.test('expunge mode drops the message; its base name is never used again', async (t) => {
  const store = makeStore({ deletionMode: 'expunge' });
  const seeded = store.seed(alice, 'Subject: x\n\nx\n', { id: '1715000000.M1P1Q1.host' });
  const drop = await store.openMaildrop(alice);
  t.same(await drop.commit({ deleted: new Set([0]), retrieved: new Set() }), { deleted: 1, seen: 0 });
  t.same(store.messages(alice), []);
  t.same(store.trash(alice), []);
  t.throws(() => store.seed(alice, 'again\n', { id: seeded.id }), failsWith('invalid-name'));
});

t.test('the Seen step: counted once, never for deleted messages', async (t) => {
  const store = makeStore();
  for (let i = 1; i <= 3; i++) await store.deliver({ recipients: [alice], content: message(i) });
  let drop = await store.openMaildrop(alice);
  t.same(await drop.commit({ deleted: new Set(), retrieved: new Set([0, 2]) }), { deleted: 0, seen: 2 });
  t.same(
    store.messages(alice).map((m) => m.isSeen),
    [true, false, true],
  );
  drop = await store.openMaildrop(alice);
  t.same(await drop.commit({ deleted: new Set(), retrieved: new Set([0, 1, 2]) }), { deleted: 0, seen: 1 }, 'only message 2 is new');
});

t.test('a message removed from outside: not-found on open, not counted by commit', async (t) => {
  const store = makeStore();
  await store.deliver({ recipients: [alice], content: message(1) });
  await store.deliver({ recipients: [alice], content: message(2) });
  const drop = await store.openMaildrop(alice);
  t.ok(store.removeMessage(alice, drop.messages[0]!.uidl));
  t.notOk(store.removeMessage(alice, 'no-such-uidl'));
  await t.rejects(drop.openMessage(0), failsWith('not-found'));
  t.ok((await readAll(await drop.openMessage(1))).includes('body 2'));
  t.same(await drop.commit({ deleted: new Set([0, 1]), retrieved: new Set([0]) }), { deleted: 1, seen: 0 });
  t.same(store.messages(alice), []);
  t.equal(store.trash(alice).length, 1, 'only the one this session deleted');
});

t.test('commit validates before changing anything and always releases the lock', async (t) => {
  const store = makeStore();
  await store.deliver({ recipients: [alice], content: message(1) });
  const drop = await store.openMaildrop(alice);
  await t.rejects(drop.commit({ deleted: new Set([0, 5]), retrieved: new Set() }), failsWith('permanent'));
  t.equal(store.messages(alice).length, 1, 'nothing deleted');
  t.notOk(store.isLocked(alice), 'lock released after the failed commit');
  await t.rejects(drop.commit({ deleted: new Set(), retrieved: new Set() }), failsWith('permanent'), 'at most once');
  await drop.release();
  const again = await store.openMaildrop(alice);
  await again.release();
  await t.rejects(again.commit({ deleted: new Set([0]), retrieved: new Set() }), failsWith('permanent'), 'no commit after release');
  t.equal(store.messages(alice).length, 1);
});

t.test('openMessage: bad index or bodyLines are StorageErrors; large messages stream in chunks', async (t) => {
  const store = makeStore();
  const big = Buffer.concat([Buffer.from('Subject: big\n\n'), Buffer.alloc(300_000, 'abcdefghi\n')]);
  await store.deliver({ recipients: [alice], content: big });
  const drop = await store.openMaildrop(alice);
  await t.rejects(drop.openMessage(1), failsWith('not-found'));
  await t.rejects(drop.openMessage(-1), failsWith('not-found'));
  await t.rejects(drop.openMessage(0, { bodyLines: -1 }), { name: 'StorageError' });
  const stream = await drop.openMessage(0);
  const chunks = (await stream.toArray()) as Buffer[];
  t.ok(chunks.length > 1, `${chunks.length} chunks`);
  t.equal(Buffer.concat(chunks).length, drop.messages[0]?.size);
  t.equal((await readAll(await drop.openMessage(0, { bodyLines: 2 }))).toString(), 'Subject: big\r\n\r\nabcdefghi\r\nabcdefghi\r\n');
  await drop.release();
});

t.test('nothing a caller holds aliases the store', async (t) => {
  const store = makeStore();
  const content = Buffer.from('Subject: x\n\nunchanged\n');
  await store.deliver({ recipients: [alice], content });
  content.fill(0x21);
  const [first] = store.messages(alice);
  t.equal(first?.content.toString(), 'Subject: x\n\nunchanged\n', 'the delivered Buffer was copied');
  first?.content.fill(0x22);
  const drop = await store.openMaildrop(alice);
  const wire = await readAll(await drop.openMessage(0));
  wire.fill(0x23);
  t.equal(store.messages(alice)[0]?.content.toString(), 'Subject: x\n\nunchanged\n');
  // Chunks a front-end reuses after yielding them.
  const reused = Buffer.alloc(8);
  async function* reusing(): AsyncGenerator<Buffer> {
    for (const part of ['Subject:', ' y\n\nabc', 'defgh\n']) {
      reused.fill(0);
      reused.write(part);
      yield reused.subarray(0, part.length);
    }
  }
  await drop.release();
  await store.deliver({ recipients: [bob], content: reusing() });
  t.equal(store.messages(bob)[0]?.content.toString(), 'Subject: y\n\nabcdefgh\n');
});

t.test('maxBytes counts received octets, drains the source, stores nothing', async (t) => {
  const store = makeStore();
  let yielded = 0;
  async function* source(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 10; i++) {
      yielded++;
      yield Buffer.from('0123456789\r\n');
    }
  }
  const outcomes = await store.deliver({ recipients: [alice, bob], content: source(), maxBytes: 50 });
  t.same(
    outcomes.map((o) => (o.ok ? 'ok' : o.error.kind)),
    ['too-large', 'too-large'],
  );
  t.equal(yielded, 10, 'the whole source was read');
  t.same(store.messages(alice), []);
  t.same(store.messages(bob), []);
  const exact = await store.deliver({ recipients: [alice], content: Buffer.from('12345\r\n'), maxBytes: 7 });
  t.ok(exact[0]?.ok, 'exactly maxBytes received is accepted (CRLF counted as received)');
  t.equal(store.stats().delivered, 1);
});

t.test('quota: the user limit or the store default; at the limit is fine, over it is not; Trash is free', async (t) => {
  const store = makeStore({ defaultQuotaMessages: 2 });
  const m = Buffer.from('0123456789\n'); // 11 stored bytes
  const small: MailUser = { name: 'small', quotaBytes: 22 };
  const kinds = async (user: MailUser) =>
    (await store.deliver({ recipients: [user], content: m })).map((o) => (o.ok ? 'ok' : o.error.kind))[0];
  t.equal(await kinds(small), 'ok');
  t.equal(await kinds(small), 'ok', '22 of 22 bytes');
  t.equal(await kinds(small), 'quota');
  t.equal(store.messages(small).length, 2, 'nothing stored for the refused copy');
  t.equal(await kinds(alice), 'ok');
  t.equal(await kinds(alice), 'ok');
  t.equal(await kinds(alice), 'quota', 'default message quota');
  const unlimited: MailUser = { name: 'carol', quotaMessages: 0 };
  for (let i = 0; i < 3; i++) t.equal(await kinds(unlimited), 'ok', '0 overrides the default: unlimited');
  const drop = await store.openMaildrop(small);
  await drop.commit({ deleted: new Set([0]), retrieved: new Set() });
  t.equal(store.trash(small).length, 1);
  t.equal(await kinds(small), 'ok', 'a message in Trash no longer counts');
  const withPrefix = await store.deliver({ recipients: [small], content: Buffer.alloc(0), prefix: () => 'X: 1\n' });
  t.equal(withPrefix[0]?.ok ? 'ok' : withPrefix[0]?.error.kind, 'quota', 'the prefix counts too');
  t.ok(withPrefix[0] !== undefined && !withPrefix[0].ok && isStorageError(withPrefix[0].error, 'quota'));
});

t.test('per-recipient failures: a bad name or a throwing prefix fails that copy only', async (t) => {
  const store = makeStore();
  const outcomes = await store.deliver({
    recipients: [alice, { name: '../escape' }, { name: 'nul\0name' }, { name: 'prefix-fails' }, bob],
    content: message(1),
    prefix: (r) => {
      if (r.name === 'prefix-fails') throw new Error('boom');
      return `Delivered-To: ${r.name}\r\n`;
    },
  });
  t.same(
    outcomes.map((o) => [o.user, o.ok ? 'ok' : o.error.kind]),
    [
      ['alice', 'ok'],
      ['../escape', 'invalid-name'],
      ['nul\0name', 'invalid-name'],
      ['prefix-fails', 'permanent'],
      ['bob@example.org', 'ok'],
    ],
  );
  t.equal(store.messages(bob)[0]?.content.toString(), 'Delivered-To: bob@example.org\nSubject: message 1\n\nbody 1\n');
  t.same(store.users().sort(), ['alice', 'bob@example.org']);
  await t.rejects(store.openMaildrop({ name: '..' }), failsWith('invalid-name'));
  await t.rejects(store.openMaildrop({ name: 'a/b' }), failsWith('invalid-name'));
  await t.rejects(store.openMaildrop({ name: '' }), failsWith('invalid-name'));
});

t.test('an unreadable source rejects the delivery and stores nothing', async (t) => {
  const store = makeStore();
  async function* broken(): AsyncGenerator<Buffer> {
    yield Buffer.from('Subject: half\n');
    throw new Error('connection reset');
  }
  const err: unknown = await store.deliver({ recipients: [alice], content: broken() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof StorageError && err.kind === 'temporary', 'rejects with StorageError(temporary)');
  t.ok(err instanceof StorageError && err.cause instanceof Error, 'keeps the cause');
  t.same(store.messages(alice), []);
  t.equal(store.stats().delivered, 0);
});

t.test('stats: copies delivered, and zero fsyncs (nothing is on a disk)', async (t) => {
  const store = makeStore();
  await store.deliver({ recipients: [alice, bob], content: message(1) });
  await store.deliver({ recipients: [alice, { name: '..' }], content: message(2) });
  t.same(store.stats(), { delivered: 3, fsyncs: 0 });
});

t.test('close refuses new work; a maildrop still open can be released', async (t) => {
  const store = makeStore();
  const drop = await store.openMaildrop(alice);
  await store.close();
  await t.rejects(store.openMaildrop(bob), failsWith('temporary'));
  const outcomes = await store.deliver({ recipients: [bob], content: message(1) });
  t.same(
    outcomes.map((o) => (o.ok ? 'ok' : o.error.kind)),
    ['temporary'],
  );
  await drop.release();
  t.notOk(store.isLocked(alice));
  await store.close();
});

t.test('the default constructor works (library users, the POP3 harness)', async (t) => {
  const store = new MemoryStore();
  const [outcome] = await store.deliver({ recipients: [alice], content: message(1) });
  t.ok(outcome?.ok);
  const drop = await store.openMaildrop(alice);
  t.equal(drop.messages.length, 1);
  t.match(drop.messages[0]?.uidl, /^\d+\.M\d+P\d+Q\d+\.[!-~]+,S=27,W=30$/);
  await drop.release();
  await store.close();
});
