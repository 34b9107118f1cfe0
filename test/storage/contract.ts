/**
 * The MailStore contract suite: every store implementation runs it (STYLE.md
 * 3, after inbucket's StoreSuite). It exercises the port (src/storage/store.ts)
 * only, and checks what lies behind it through the factory's read-back
 * helpers, so the same assertions hold for the Maildir store (files in a
 * temporary tree) and the in-memory store.
 *
 * Not a *.test.ts file: tap runs it only through a store's test file, e.g.
 *
 *     storeContract(t, 'MaildirStore', async (t, { deletionMode }) => {
 *       const root = t.testdir({});
 *       const store = await MaildirStore.open({ root, deletionMode });
 *       return { store, user: (name, quota) => ({ name, ...quota }), storedMessages, trashMessages, trashUidls };
 *     });
 */
import type { Test } from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { StorageErrorKind } from '../../src/errors.js';
import type { DeliveryOutcome, DeliveryRequest, MailStore, MailUser, Maildrop } from '../../src/storage/store.js';
import { toStoredBuffer, toWireBuffer, topOfMessageBuffer, wireSize } from '../../src/storage/wire.js';

export type ContractDeletionMode = 'trash' | 'expunge';

/** What the suite asks the factory for; each call must give a fresh, empty store. */
export interface ContractStoreOptions {
  readonly deletionMode: ContractDeletionMode;
}

export interface ContractQuota {
  readonly quotaBytes?: number;
  readonly quotaMessages?: number;
}

/** A fresh store plus read-back helpers that look behind the port (files, maps). */
export interface ContractStore {
  readonly store: MailStore;
  /** The MailUser the user database would make for `name` (layout fields such as home), with these quota fields. */
  user(name: string, quota?: ContractQuota): MailUser;
  /** Stored bytes of the user's maildrop now, oldest first (DESIGN.md "Order"); [] for a user with none. */
  storedMessages(user: MailUser): Promise<Buffer[]>;
  /** Stored bytes of the messages in the user's Trash, in any order; [] when there is none. */
  trashMessages(user: MailUser): Promise<Buffer[]>;
  /** UIDLs the Trash copies carry (DESIGN.md "Identity" of their names), in any order. */
  trashUidls(user: MailUser): Promise<string[]>;
  /**
   * Put `stored` into the maildrop as it is, as the newest message (a file
   * another MDA wrote, e.g. with CRLF). Optional: the seeding tests are
   * skipped for a factory without it.
   */
  seed?(user: MailUser, stored: Buffer): Promise<void>;
  /**
   * Let the store's clock move on: resolves with a moment after everything
   * the store did so far and before anything it does next (a Maildir store
   * waits until the file system stamps a new file later than the moment).
   * Optional: the Trash-age tests are skipped for a factory without it.
   */
  passTime?(): Promise<Date>;
  /** false for a store form without the Seen step (flat `.eml` folders); default true. */
  readonly hasSeenStep?: boolean;
  /** Run after the store is closed. */
  cleanup?(): Promise<void>;
}

export type ContractFactory = (t: Test, options: ContractStoreOptions) => Promise<ContractStore>;

export interface ContractConfig {
  /** Deletion modes the factory supports; default both. The first is used for mode-independent tests. */
  readonly deletionModes?: readonly ContractDeletionMode[];
}

const fixtureDir = new URL('../../fixtures/messages/', import.meta.url);

/** The fixture corpus (fixtures/messages/*.eml), sorted by name. */
export function loadFixtures(): { name: string; bytes: Buffer }[] {
  return readdirSync(fixtureDir)
    .filter((name) => name.endsWith('.eml'))
    .sort()
    .map((name) => ({ name, bytes: readFileSync(new URL(name, fixtureDir)) }));
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

const UIDL_SHAPE = /^[\x21-\x7e]{1,70}$/;

function kinds(outcomes: readonly DeliveryOutcome[]): string[] {
  return outcomes.map((o) => (o.ok ? 'ok' : o.error.kind));
}

function sortedHex(buffers: readonly Buffer[]): string[] {
  return buffers.map((b) => b.toString('hex')).sort();
}

async function* chunksOf(parts: readonly (Buffer | Uint8Array)[]): AsyncGenerator<Buffer | Uint8Array> {
  for (const part of parts) yield part;
}

/** A suite-side view of one store under test: the factory's helpers plus bookkeeping for teardown. */
interface Harness extends ContractStore {
  readonly deletionMode: ContractDeletionMode;
  /** openMaildrop, remembered so teardown releases it if an assertion failed first. */
  open(user: MailUser): Promise<Maildrop>;
  /** Deliver and assert every recipient got its copy; returns the ids. */
  deliverOk(recipients: readonly MailUser[], content: DeliveryRequest['content'], extra?: Partial<DeliveryRequest>): Promise<string[]>;
}

async function setUp(t: Test, makeStore: ContractFactory, deletionMode: ContractDeletionMode): Promise<Harness> {
  const made = await makeStore(t, { deletionMode });
  const drops: Maildrop[] = [];
  t.teardown(async () => {
    for (const drop of drops) await drop.release().catch(() => undefined);
    await made.store.close();
    await made.cleanup?.();
  });
  return {
    ...made,
    user: (name, quota) => made.user(name, quota),
    storedMessages: (user) => made.storedMessages(user),
    trashMessages: (user) => made.trashMessages(user),
    trashUidls: (user) => made.trashUidls(user),
    deletionMode,
    async open(user) {
      const drop = await made.store.openMaildrop(user);
      drops.push(drop);
      return drop;
    },
    async deliverOk(recipients, content, extra = {}) {
      const outcomes = await made.store.deliver({ recipients, content, ...extra });
      t.same(kinds(outcomes), recipients.map(() => 'ok'), 'every copy delivered');
      t.same(
        outcomes.map((o) => o.user),
        recipients.map((r) => r.name),
        'one outcome per recipient, in order',
      );
      return outcomes.map((o) => (o.ok ? o.id : ''));
    },
  };
}

/** Asserts `promise` rejects with a StorageError of `kind`. */
async function rejectsWith(t: Test, promise: Promise<unknown>, kind: StorageErrorKind, message: string): Promise<void> {
  await t.rejects(promise, { name: 'StorageError', kind }, message);
}

/**
 * What Maildrop.readMessage must give for a message whose wire form is
 * `wire`, built independently of the store's code: every line start (the
 * first byte, or after an LF, which in wire form always ends a CRLF) that is
 * "." gets one more, then the terminating ".CRLF" (RFC 1939 section 3).
 */
export function framedOracle(wire: Buffer): Buffer {
  const text = wire.toString('latin1');
  return Buffer.from(`${text.startsWith('.') ? '.' : ''}${text.replaceAll('\n.', '\n..')}.\r\n`, 'latin1');
}

const simple = (n: number | string) => Buffer.from(`From: sender@example.net\nSubject: message ${n}\n\nbody of message ${n}\n`);

export function storeContract(t: Test, name: string, makeStore: ContractFactory, config: ContractConfig = {}): void {
  const modes = config.deletionModes ?? ['trash', 'expunge'];
  const firstMode = modes[0] ?? 'trash';
  const fixtures = loadFixtures();
  const setup = (t: Test, mode: ContractDeletionMode = firstMode) => setUp(t, makeStore, mode);

  t.test(`${name} passes the MailStore contract`, async (t) => {
    t.test('a new user has an empty maildrop', async (t) => {
      const s = await setup(t);
      const user = s.user('newcomer');
      const drop = await s.open(user);
      t.equal(drop.user, user.name);
      t.same(drop.messages, []);
      await drop.release();
      t.same(await s.storedMessages(user), []);
      t.same(await s.trashMessages(user), []);
    });

    t.test('every fixture: delivered byte-correct; LIST size = bytes streamed = wire form of the stored bytes', async (t) => {
      const s = await setup(t);
      const user = s.user('corpus');
      for (const f of fixtures) await s.deliverOk([user], f.bytes);
      const stored = await s.storedMessages(user);
      t.equal(stored.length, fixtures.length);
      const drop = await s.open(user);
      t.equal(drop.messages.length, fixtures.length);
      for (const [i, f] of fixtures.entries()) {
        t.same(stored[i], toStoredBuffer(f.bytes), `${f.name}: stored with CRLF -> LF, lone CR kept`);
        const streamed = await readAll(await drop.openMessage(i));
        t.equal(drop.messages[i]?.size, streamed.length, `${f.name}: size = octets streamed`);
        t.same(streamed, toWireBuffer(toStoredBuffer(f.bytes)), `${f.name}: wire form`);
        const framed = await drop.readMessage(i);
        t.same(framed.bytes, framedOracle(streamed), `${f.name}: readMessage is the wire form, stuffed and terminated`);
        t.equal(framed.wireSize, streamed.length, `${f.name}: readMessage counts the wire octets`);
        t.equal(drop.messages[i]?.size, wireSize(stored[i] ?? Buffer.alloc(0)), `${f.name}: wireSize of the stored bytes`);
        for (const n of [0, 1, 5]) {
          const top = await readAll(await drop.openMessage(i, { bodyLines: n }));
          t.same(top, topOfMessageBuffer(toStoredBuffer(f.bytes), n), `${f.name}: TOP ${n}`);
        }
      }
      await drop.release();
    });

    t.test('every fixture stored as it is (seed): size = bytes streamed, CRLF files untouched', async (t) => {
      const s = await setup(t);
      if (s.seed === undefined) {
        t.pass('this store has no seed(): skipped');
        return;
      }
      const user = s.user('seeded');
      for (const f of fixtures) await s.seed(user, f.bytes);
      const drop = await s.open(user);
      t.equal(drop.messages.length, fixtures.length);
      for (const [i, f] of fixtures.entries()) {
        const streamed = await readAll(await drop.openMessage(i));
        t.equal(drop.messages[i]?.size, streamed.length, `${f.name}: size = octets streamed`);
        t.equal(streamed.length, wireSize(f.bytes), `${f.name}: DESIGN.md wire size`);
        t.same(streamed, toWireBuffer(f.bytes), `${f.name}: wire form of the file as stored`);
        const framed = await drop.readMessage(i);
        t.same(framed.bytes, framedOracle(streamed), `${f.name}: readMessage of the file as stored`);
        t.equal(framed.wireSize, streamed.length, `${f.name}: readMessage counts the wire octets`);
        const top = await readAll(await drop.openMessage(i, { bodyLines: 2 }));
        t.same(top, topOfMessageBuffer(f.bytes, 2), `${f.name}: TOP 2`);
      }
      await drop.release();
    });

    t.test('messages are listed oldest first', async (t) => {
      const s = await setup(t);
      const user = s.user('orderly');
      for (let i = 1; i <= 6; i++) await s.deliverOk([user], simple(i));
      const stored = await s.storedMessages(user);
      t.same(
        stored.map((b) => b.toString()),
        [1, 2, 3, 4, 5, 6].map((i) => simple(i).toString()),
      );
      const drop = await s.open(user);
      for (let i = 0; i < 6; i++) {
        t.match((await readAll(await drop.openMessage(i))).toString(), `Subject: message ${i + 1}\r\n`);
      }
      await drop.release();
    });

    t.test('UIDLs: 1-70 octets of 0x21-0x7E, unique, stable across sessions and deletions', async (t) => {
      const s = await setup(t);
      const user = s.user('ids');
      const ids = [];
      for (let i = 1; i <= 5; i++) ids.push(...(await s.deliverOk([user], simple(i))));
      t.equal(new Set(ids).size, 5, 'delivery ids are distinct');
      let drop = await s.open(user);
      const first = drop.messages.map((m) => m.uidl);
      for (const uidl of first) t.match(uidl, UIDL_SHAPE, `shape of ${uidl}`);
      t.equal(new Set(first).size, 5, 'distinct');
      await drop.release();

      await s.deliverOk([user], simple(6));
      drop = await s.open(user);
      t.same(drop.messages.slice(0, 5).map((m) => m.uidl), first, 'same UIDLs in the next session');
      const sixth = drop.messages[5]?.uidl;
      t.ok(sixth !== undefined && !first.includes(sixth), 'a new message gets a new UIDL');
      await drop.commit({ deleted: new Set([0, 2]), retrieved: new Set([1]) });

      drop = await s.open(user);
      t.same(
        drop.messages.map((m) => m.uidl),
        [first[1], first[3], first[4], sixth],
        'the others keep their UIDLs after deletions and the Seen step',
      );
      await drop.release();
    });

    t.test('openMessage with bodyLines sends the header, the blank line and n body lines (TOP)', async (t) => {
      const s = await setup(t);
      const user = s.user('top');
      await s.deliverOk([user], Buffer.from('Subject: top\r\nX-A: 1\r\n\r\nline 1\r\nline 2\r\n\r\nline 4\r\n'));
      await s.deliverOk([user], Buffer.from('Subject: header only\nX-B: 2\n'));
      const drop = await s.open(user);
      const top = async (i: number, n: number) => (await readAll(await drop.openMessage(i, { bodyLines: n }))).toString();
      t.equal(await top(0, 0), 'Subject: top\r\nX-A: 1\r\n\r\n');
      t.equal(await top(0, 1), 'Subject: top\r\nX-A: 1\r\n\r\nline 1\r\n');
      t.equal(await top(0, 3), 'Subject: top\r\nX-A: 1\r\n\r\nline 1\r\nline 2\r\n\r\n');
      t.equal(await top(0, 100), 'Subject: top\r\nX-A: 1\r\n\r\nline 1\r\nline 2\r\n\r\nline 4\r\n');
      t.equal(await top(1, 0), 'Subject: header only\r\nX-B: 2\r\n', 'no blank line: the header, nothing invented');
      t.equal(await top(1, 5), 'Subject: header only\r\nX-B: 2\r\n');
      await rejectsWith(t, drop.openMessage(2), 'not-found', 'an index outside the snapshot');
      await rejectsWith(t, drop.readMessage(2), 'not-found', 'readMessage: an index outside the snapshot');
      await rejectsWith(t, drop.readMessage(-1), 'not-found', 'readMessage: a negative index');
      await drop.release();
    });

    t.test('one open maildrop per user: in-use until release or commit', async (t) => {
      const s = await setup(t);
      const alice = s.user('alice');
      const bob = s.user('bob');
      await s.deliverOk([alice], simple(1));
      const first = await s.open(alice);
      await rejectsWith(t, s.open(alice), 'in-use', 'a second session is refused');
      const other = await s.open(bob);
      t.pass('another user is not blocked');
      await other.release();
      await first.release();
      const second = await s.open(alice);
      t.equal(second.messages.length, 1, 'after release() it opens');
      await rejectsWith(t, s.open(alice), 'in-use', 'and is exclusive again');
      await second.commit({ deleted: new Set(), retrieved: new Set() });
      const third = await s.open(alice);
      t.pass('after commit() it opens');
      await third.release();
    });

    t.test('snapshot: a delivery during a session shows up only in the next one', async (t) => {
      const s = await setup(t);
      const user = s.user('snap');
      await s.deliverOk([user], simple('old 1'));
      await s.deliverOk([user], simple('old 2'));
      let drop = await s.open(user);
      await s.deliverOk([user], simple('new'));
      t.equal(drop.messages.length, 2, 'the snapshot does not change');
      t.match((await readAll(await drop.openMessage(1))).toString(), 'message old 2');
      const commit = await drop.commit({ deleted: new Set([0]), retrieved: new Set() });
      t.equal(commit.deleted, 1);
      drop = await s.open(user);
      t.equal(drop.messages.length, 2);
      t.match((await readAll(await drop.openMessage(0))).toString(), 'message old 2');
      t.match((await readAll(await drop.openMessage(1))).toString(), 'message new', 'the new one, never touched by the commit');
      await drop.release();
    });

    for (const mode of modes) {
      t.test(`${mode} mode: commit removes deleted messages as one batch`, async (t) => {
        const s = await setup(t, mode);
        const user = s.user('deleter');
        for (let i = 1; i <= 4; i++) await s.deliverOk([user], simple(i));
        const before = await s.storedMessages(user);
        let drop = await s.open(user);
        const uidls = drop.messages.map((m) => m.uidl);
        const result = await drop.commit({ deleted: new Set([1, 3]), retrieved: new Set([0, 1]) });
        t.same(result, { deleted: 2, seen: s.hasSeenStep === false ? 0 : 1 }, 'deleted 2; Seen only for the kept retrieved one');
        await drop.release();
        t.pass('release() after commit() is safe');

        drop = await s.open(user);
        t.same(
          drop.messages.map((m) => m.uidl),
          [uidls[0], uidls[2]],
          'gone from the next snapshot; the rest keep UIDL and order',
        );
        await drop.release();
        t.same(await s.storedMessages(user), [before[0], before[2]], 'the kept messages are unchanged');
        if (mode === 'trash') {
          t.same(sortedHex(await s.trashMessages(user)), sortedHex([before[1]!, before[3]!]), 'in Trash, byte for byte');
          t.same((await s.trashUidls(user)).sort(), [uidls[1], uidls[3]].sort(), 'with the same UIDLs');
        } else {
          t.same(await s.trashMessages(user), [], 'expunged: nothing in Trash');
        }
      });
    }

    t.test('commit with retrieved messages only keeps them all; Seen is counted once', async (t) => {
      const s = await setup(t);
      const user = s.user('reader');
      for (let i = 1; i <= 3; i++) await s.deliverOk([user], simple(i));
      const before = await s.storedMessages(user);
      let drop = await s.open(user);
      const uidls = drop.messages.map((m) => m.uidl);
      for (let i = 0; i < 3; i++) await readAll(await drop.openMessage(i));
      const hasSeen = s.hasSeenStep !== false;
      t.same(await drop.commit({ deleted: new Set(), retrieved: new Set([0, 1, 2]) }), { deleted: 0, seen: hasSeen ? 3 : 0 });
      drop = await s.open(user);
      t.same(
        drop.messages.map((m) => m.uidl),
        uidls,
        'all still there, same UIDLs',
      );
      t.same(await drop.commit({ deleted: new Set(), retrieved: new Set([0, 1, 2]) }), { deleted: 0, seen: 0 }, 'already Seen');
      t.same(await s.storedMessages(user), before, 'bytes unchanged');
      t.same(await s.trashMessages(user), []);
    });

    t.test('release() changes nothing, and is idempotent', async (t) => {
      const s = await setup(t);
      const user = s.user('dropper');
      for (let i = 1; i <= 3; i++) await s.deliverOk([user], simple(i));
      const before = await s.storedMessages(user);
      let drop = await s.open(user);
      const uidls = drop.messages.map((m) => m.uidl);
      for (let i = 0; i < 3; i++) await readAll(await drop.openMessage(i));
      await drop.release();
      await drop.release();
      t.same(await s.storedMessages(user), before);
      t.same(await s.trashMessages(user), []);
      drop = await s.open(user);
      t.same(
        drop.messages.map((m) => m.uidl),
        uidls,
      );
      // Read again without consuming: destroying the stream must not leak a lock or a handle.
      (await drop.openMessage(0)).destroy();
      await drop.release();
    });

    t.test('one delivery to several recipients: one outcome each, in order', async (t) => {
      const s = await setup(t);
      const a = s.user('multi-a');
      const b = s.user('multi-b');
      const full = s.user('multi-full', { quotaMessages: 1 });
      await s.deliverOk([full], simple('fills the quota'));
      const outcomes = await s.store.deliver({ recipients: [a, full, b], content: simple('for three') });
      t.same(kinds(outcomes), ['ok', 'quota', 'ok']);
      t.same(
        outcomes.map((o) => o.user),
        [a.name, full.name, b.name],
      );
      const ids = outcomes.flatMap((o) => (o.ok ? [o.id] : []));
      t.ok(ids.every((id) => id.length > 0), 'ok outcomes carry an id');
      t.same(await s.storedMessages(a), [simple('for three')]);
      t.same(await s.storedMessages(b), [simple('for three')]);
      t.same(await s.storedMessages(full), [simple('fills the quota')], 'the refused copy left nothing');
    });

    t.test('prefix: header lines per recipient, stored with LF and counted in the size', async (t) => {
      const s = await setup(t);
      const a = s.user('pre-a');
      const b = s.user('pre-b');
      await s.deliverOk([a, b], simple('prefixed'), {
        prefix: (r) => `Return-Path: <sender@example.net>\r\nDelivered-To: ${r.name}\r\n`,
      });
      for (const user of [a, b]) {
        const expected = Buffer.concat([Buffer.from(`Return-Path: <sender@example.net>\nDelivered-To: ${user.name}\n`), simple('prefixed')]);
        t.same(await s.storedMessages(user), [expected], `${user.name}: own prefix, LF line ends`);
        const drop = await s.open(user);
        t.equal(drop.messages[0]?.size, wireSize(expected));
        t.same(await readAll(await drop.openMessage(0)), toWireBuffer(expected));
        await drop.release();
      }
      await s.deliverOk([a], simple('buffer prefix'), { prefix: () => Buffer.from('X-Buffer: yes\n') });
      t.match((await s.storedMessages(a))[1]?.toString(), /^X-Buffer: yes\nFrom: /);
    });

    t.test('maxBytes: over it every copy is too-large and nothing is stored; at it, accepted', async (t) => {
      const s = await setup(t);
      const a = s.user('big-a');
      const b = s.user('big-b');
      const content = simple('exactly sized'); // LF only: received octets = stored octets
      const refused = await s.store.deliver({ recipients: [a, b], content, maxBytes: content.length - 1 });
      t.same(kinds(refused), ['too-large', 'too-large']);
      const chunks = [content.subarray(0, 10), content.subarray(10)];
      const refusedStream = await s.store.deliver({ recipients: [a], content: chunksOf(chunks), maxBytes: 20 });
      t.same(kinds(refusedStream), ['too-large'], 'also when streamed');
      t.same(await s.storedMessages(a), []);
      t.same(await s.storedMessages(b), []);
      await s.deliverOk([a], content, { maxBytes: content.length });
      t.same(await s.storedMessages(a), [content]);
    });

    t.test('quota: over the message or byte quota the outcome is quota, nothing stored', async (t) => {
      const s = await setup(t);
      const counted = s.user('quota-count', { quotaMessages: 2 });
      await s.deliverOk([counted], simple(1));
      await s.deliverOk([counted], simple(2));
      const third = await s.store.deliver({ recipients: [counted], content: simple(3) });
      t.same(kinds(third), ['quota']);
      t.equal((await s.storedMessages(counted)).length, 2);

      const sized = s.user('quota-bytes', { quotaBytes: 4000 });
      await s.deliverOk([sized], simple('small'));
      const big = Buffer.concat([simple('big'), Buffer.alloc(8000, 'x\n')]);
      const over = await s.store.deliver({ recipients: [sized], content: big });
      t.same(kinds(over), ['quota']);
      t.ok(!over[0]?.ok && over[0]?.error.name === 'StorageError', 'a StorageError');
      t.same(await s.storedMessages(sized), [simple('small')]);
      await s.deliverOk([sized], simple('still fits'));
    });

    t.test('200 concurrent deliveries: all present, all distinct', async (t) => {
      const s = await setup(t);
      const user = s.user('busy');
      const contents = Array.from({ length: 200 }, (_, i) => simple(`concurrent ${i}`));
      const outcomes = await Promise.all(contents.map((content) => s.store.deliver({ recipients: [user], content })));
      const flat = outcomes.flat();
      t.equal(flat.filter((o) => o.ok).length, 200, 'all delivered');
      t.equal(new Set(flat.map((o) => (o.ok ? o.id : ''))).size, 200, 'distinct ids');
      const drop = await s.open(user);
      t.equal(drop.messages.length, 200);
      t.equal(new Set(drop.messages.map((m) => m.uidl)).size, 200, 'distinct UIDLs');
      await drop.release();
      t.same(sortedHex(await s.storedMessages(user)), sortedHex(contents), 'every message exactly once, byte for byte');
    });

    t.test('content as an async iterable, split at awkward places', async (t) => {
      const s = await setup(t);
      const message = Buffer.from('Subject: split\r\nX-CR: a\rb\r\n\r\nline 1\r\n.\r\nline 3\rx\r\nend\r');
      const splits: { label: string; parts: (Buffer | Uint8Array)[] }[] = [];
      for (let at = message.indexOf('\r\n'); at !== -1; at = message.indexOf('\r\n', at + 1)) {
        splits.push({ label: `CR|LF split at ${at}`, parts: [message.subarray(0, at + 1), message.subarray(at + 1)] });
      }
      splits.push({ label: 'one byte per chunk', parts: [...message].map((b) => Buffer.from([b])) });
      splits.push({ label: 'empty chunks between', parts: [message.subarray(0, 15), Buffer.alloc(0), message.subarray(15)] });
      splits.push({ label: 'Uint8Array chunks', parts: [new Uint8Array(message.subarray(0, 16)), new Uint8Array(message.subarray(16))] });
      splits.push({ label: 'as one Buffer', parts: [message] });
      const user = s.user('chunky');
      for (const split of splits) await s.deliverOk([user], chunksOf(split.parts));
      await s.deliverOk([user], message);
      const expected = Buffer.from('Subject: split\nX-CR: a\rb\n\nline 1\n.\nline 3\rx\nend\r');
      const stored = await s.storedMessages(user);
      t.equal(stored.length, splits.length + 1);
      for (const [i, split] of splits.entries()) t.same(stored[i], expected, split.label);
      t.same(stored[splits.length], expected, 'content as a Buffer');
      const drop = await s.open(user);
      t.equal(drop.messages[0]?.size, expected.length + 6 + 2, 'six LFs gain a CR, and the last line a CRLF');
      await drop.release();
    });

    t.test('a content that cannot be read rejects the delivery and leaves nothing', async (t) => {
      const s = await setup(t);
      const user = s.user('broken');
      async function* broken(): AsyncGenerator<Buffer> {
        yield Buffer.from('Subject: half a message\r\n');
        throw new Error('connection reset by peer');
      }
      await t.rejects(s.store.deliver({ recipients: [user], content: broken() }), { name: 'StorageError' });
      t.same(await s.storedMessages(user), []);
    });

    t.test('a user name that could escape the root is refused', async (t) => {
      const s = await setup(t);
      const escape = s.user('../escape');
      await rejectsWith(t, s.store.openMaildrop(escape), 'invalid-name', 'openMaildrop');
      const outcomes = await s.store.deliver({ recipients: [escape, s.user('fine')], content: simple(1) });
      t.same(kinds(outcomes), ['invalid-name', 'ok'], 'that copy fails, the others are delivered');
    });

    t.test('purgeTrash removes what went to Trash before the given time, and nothing else', async (t) => {
      const s = await setup(t, modes.includes('trash') ? 'trash' : firstMode);
      const far = new Date(Date.now() + 10 * 365 * 86_400_000);
      const nobody = s.user('never-seen');
      t.same(await s.store.purgeTrash(nobody, far), { purged: 0, bytes: 0 }, 'a user with no folder: nothing');
      t.same(await s.storedMessages(nobody), []);
      const user = s.user('retention');
      t.same(await s.store.purgeTrash(user, far), { purged: 0, bytes: 0 }, 'no Trash yet: nothing');
      for (let i = 1; i <= 3; i++) await s.deliverOk([user], simple(i));
      let drop = await s.open(user);
      await drop.commit({ deleted: new Set([0]), retrieved: new Set() });
      if (s.deletionMode !== 'trash') {
        t.same(await s.store.purgeTrash(user, far), { purged: 0, bytes: 0 }, 'expunge mode: Trash stays empty');
        return;
      }
      if (s.passTime === undefined) {
        t.pass('this store has no passTime(): the age test is skipped');
        return;
      }
      const boundary = await s.passTime();
      drop = await s.open(user);
      const kept = drop.messages.map((m) => m.uidl);
      await drop.commit({ deleted: new Set([0]), retrieved: new Set() });
      t.equal((await s.trashMessages(user)).length, 2);

      t.same(
        await s.store.purgeTrash(user, boundary),
        { purged: 1, bytes: toStoredBuffer(simple(1)).length },
        'the message trashed before the boundary, with its stored octets',
      );
      t.same(sortedHex(await s.trashMessages(user)), sortedHex([toStoredBuffer(simple(2))]), 'the later one stays');
      t.same(await s.store.purgeTrash(user, boundary), { purged: 0, bytes: 0 }, 'a second run finds nothing more');
      t.same(await s.storedMessages(user), [toStoredBuffer(simple(3))], 'the maildrop is untouched');

      drop = await s.open(user);
      t.same(await s.store.purgeTrash(user, far), { purged: 1, bytes: toStoredBuffer(simple(2)).length }, 'no lock needed');
      t.same(drop.messages.map((m) => m.uidl), kept.slice(1), 'an open session sees its maildrop as before');
      t.same((await readAll(await drop.openMessage(0))).toString(), toWireBuffer(toStoredBuffer(simple(3))).toString());
      await drop.release();
      t.same(await s.trashMessages(user), [], 'Trash empty');
      t.same(await s.storedMessages(user), [toStoredBuffer(simple(3))]);
    });

    t.test('stats count delivered copies', async (t) => {
      const s = await setup(t);
      const before = s.store.stats();
      t.ok(Number.isSafeInteger(before.delivered) && before.delivered >= 0);
      t.ok(Number.isSafeInteger(before.fsyncs) && before.fsyncs >= 0);
      await s.deliverOk([s.user('stat-a'), s.user('stat-b')], simple(1));
      await s.store.deliver({ recipients: [s.user('stat-a')], content: simple(2), maxBytes: 1 });
      const after = s.store.stats();
      t.equal(after.delivered - before.delivered, 2, 'two copies; the refused one does not count');
      t.ok(after.fsyncs >= before.fsyncs);
    });
  });
}
