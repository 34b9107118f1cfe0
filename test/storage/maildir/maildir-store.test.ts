import t, { type Test } from 'tap';
import * as path from 'node:path';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MaildirStore, type MaildirStoreOptions } from '../../../src/storage/maildir/maildir-store.js';
import { topOfMessageBuffer } from '../../../src/storage/wire.js';
import type { Maildrop, MailUser } from '../../../src/storage/store.js';
import { hashedUidl } from '../../../src/storage/maildir/filename.js';
import { framedOracle, storeContract } from '../contract.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { rejectsKind } from '../../helpers/maildir-assert.js';
import {
  captureLogger,
  FIXTURES_DIR,
  fixtureMessages,
  makeMaildir,
  readAll,
  referenceWire,
  sizedName,
  writeFiles,
  byDeliveryTime,
} from '../../helpers/maildir-tree.js';

const alice = { name: 'alice' };

async function store(t: Test, root: string, options: Partial<MaildirStoreOptions> = {}): Promise<MaildirStore> {
  const s = await MaildirStore.open({ root, ...options });
  t.teardown(() => s.close());
  return s;
}

/** Retrieve every message whole; returns the wire bytes. */
async function retrieveAll(drop: Maildrop): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < drop.messages.length; i++) out.push(await readAll(await drop.openMessage(i)));
  return out;
}

/**
 * A moment after every file change so far and before any to come, on the
 * file system's clock (ctimes come from the kernel's coarse clock, which
 * lags Date.now() by up to a tick): a probe file is stamped until its
 * ctime is past the moment. Bounded; waits on the file system, not a timer.
 */
async function passFsTime(probe: string): Promise<Date> {
  const moment = Date.now() + 1;
  for (let i = 0; i < 1_000_000; i++) {
    writeFileSync(probe, String(i));
    if (statSync(probe).ctimeMs > moment) return new Date(moment);
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('the file system clock did not move');
}

/**
 * The shared MailStore contract (test/storage/contract.ts) on real
 * temporary trees: new users get Maildirs; the second run gives each user a
 * flat `*.eml` folder first (no Seen step there).
 */
for (const form of ['maildir', 'flat'] as const) {
  storeContract(t, `MaildirStore (${form})`, async (t, { deletionMode }) => {
    const root = t.testdir();
    const store = await MaildirStore.open({ root, deletionMode });
    const folder = (user: MailUser) => path.join(root, user.name);
    const read = (dir: string, names: string[]) => names.map((n) => readFileSync(path.join(dir, n)));
    const list = (dir: string, keep: (name: string) => boolean = () => true) =>
      existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.') && keep(n)) : [];
    let seeded = 0;
    return {
      store,
      hasSeenStep: form === 'maildir',
      passTime: () => passFsTime(`${root}-clock`),
      user(name, quota = {}) {
        // A flat folder is made up front for names that are plain folder names.
        if (form === 'flat' && /^[a-z][a-z0-9-]*$/.test(name)) mkdirSync(path.join(root, name), { recursive: true });
        return { name, ...quota };
      },
      async storedMessages(user) {
        const dir = folder(user);
        if (form === 'flat') {
          const names = list(dir, (n) => n.endsWith('.eml')).sort(byDeliveryTime);
          return read(dir, names);
        }
        const entries = ['cur', 'new'].flatMap((sub) => list(path.join(dir, sub)).map((n) => ({ sub, n })));
        entries.sort((a, b) => byDeliveryTime(a.n, b.n));
        return entries.map((e) => readFileSync(path.join(dir, e.sub, e.n)));
      },
      async trashMessages(user) {
        const dir = path.join(folder(user), '.Trash');
        if (form === 'flat') return read(dir, list(dir, (n) => n.endsWith('.eml')));
        return ['cur', 'new'].flatMap((sub) => read(path.join(dir, sub), list(path.join(dir, sub))));
      },
      async trashUidls(user) {
        const dir = path.join(folder(user), '.Trash');
        const names =
          form === 'flat'
            ? list(dir, (n) => n.endsWith('.eml')).map((n) => n.slice(0, -4))
            : ['cur', 'new'].flatMap((sub) => list(path.join(dir, sub))).map((n) => n.split(/[:;!]2,/)[0] ?? n);
        return names.map((base) => (/^[\x21-\x7e]{1,70}$/.test(base) ? base : hashedUidl(base)));
      },
      async seed(user, stored) {
        // As another MDA would: a name with a time after every delivery, no S=/W=.
        seeded++;
        const unique = `${Math.floor(Date.now() / 1000) + 100_000 + seeded}.M0P1Q${seeded}.seed`;
        if (form === 'flat') writeFiles(folder(user), { [`${unique}.eml`]: stored });
        else if (existsSync(path.join(folder(user), 'new'))) writeFiles(path.join(folder(user), 'new'), { [unique]: stored });
        else makeMaildir(folder(user), { new: { [unique]: stored } });
      },
    };
  });
}

t.test('open checks the root and the layout', async (t) => {
  const base = t.testdir({ file: 'x' });
  await rejectsKind(t, MaildirStore.open({ root: path.join(base, 'missing') }), 'not-found');
  await rejectsKind(t, MaildirStore.open({ root: path.join(base, 'file') }), 'permanent');
  await rejectsKind(t, MaildirStore.open({ root: base, layout: '%q' }), 'invalid-name');
});

t.test('a new user gets an empty Maildir, 0700, and the lock is released', async (t) => {
  const root = t.testdir();
  const s = await store(t, root, { layout: '%d/%n' });
  const drop = await s.openMaildrop({ name: 'bob@example.org' });
  t.same(drop.messages, []);
  t.equal(drop.user, 'bob@example.org');
  const dir = path.join(root, 'example.org', 'bob');
  for (const sub of ['', 'cur', 'new', 'tmp']) t.equal(statSync(path.join(dir, sub)).mode & 0o777, 0o700, `${sub || 'folder'} 0700`);
  t.equal(statSync(path.join(root, 'example.org')).mode & 0o777, 0o711, 'shared parent 0711');
  t.ok(existsSync(path.join(dir, 'maildird.lock')));
  await drop.release();
  await drop.release();
  t.notOk(existsSync(path.join(dir, 'maildird.lock')), 'lock gone');
});

t.test('as root, a new Maildir belongs to the user of the passwd line', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const root = t.testdir();
  const s = await store(t, root);
  const drop = await s.openMaildrop({ name: 'owned', uid: 65534, gid: 65534 });
  await drop.release();
  for (const sub of ['', 'cur', 'new', 'tmp']) {
    const st = statSync(path.join(root, 'owned', sub));
    t.same([st.uid, st.gid], [65534, 65534], `${sub || 'folder'} owned by the user`);
  }
  const plain = await s.openMaildrop({ name: 'no-ids' });
  await plain.release();
  t.equal(statSync(path.join(root, 'no-ids')).uid, 0, 'no uid/gid: left to the process');
});

t.test('wire form and sizes: every fixture, small and streamed, equals what is sent', async (t) => {
  const root = t.testdir();
  const fixtures = fixtureMessages();
  const cur: Record<string, Buffer> = {};
  fixtures.forEach((f, i) => {
    // Half the names carry S=/W= (trusted), half do not (computed).
    const unique = `${1700000000 + i}.M0P1Q${i}.host`;
    cur[`${i % 2 === 0 ? sizedName(unique, f.bytes) : unique}:2,S`] = f.bytes;
  });
  // Large messages take the streaming path: one LF-only, one ending without a line end.
  const big = Buffer.concat(Array.from({ length: 1200 }, () => fixtures[0]?.bytes ?? Buffer.alloc(0)));
  const bigNoEol = Buffer.concat([big, Buffer.from('last line without end')]);
  cur[`${sizedName('1800000000.M0P1Q1.host', big)}:2,S`] = big;
  cur['1800000001.M0P1Q2.host:2,S'] = bigNoEol;
  makeMaildir(path.join(root, 'alice'), { cur });
  const s = await store(t, root);
  const drop = await s.openMaildrop(alice);
  const stored = [...fixtures.map((f) => f.bytes), big, bigNoEol];
  t.equal(drop.messages.length, stored.length);
  const sent = await retrieveAll(drop);
  stored.forEach((bytes, i) => {
    const name = fixtures[i]?.file ?? `large ${i}`;
    t.ok(sent[i]?.equals(referenceWire(bytes)), `${name}: wire bytes`);
    t.equal(drop.messages[i]?.size, sent[i]?.length, `${name}: listed size = bytes sent`);
  });
  // TOP through both paths agrees with the one-shot reference.
  for (const lines of [0, 1, 5, 1000]) {
    for (const i of [0, fixtures.length, fixtures.length + 1]) {
      const top = await readAll(await drop.openMessage(i, { bodyLines: lines }));
      t.ok(top.equals(topOfMessageBuffer(stored[i] as Buffer, lines)), `TOP ${i + 1} ${lines}`);
    }
  }
  await rejectsKind(t, drop.openMessage(stored.length), 'not-found', 'out of range');
  await rejectsKind(t, drop.openMessage(-1), 'not-found', 'negative');
  await rejectsKind(t, drop.openMessage(0, { bodyLines: -1 }), 'permanent', 'bad line count');
  await drop.release();
  await rejectsKind(t, drop.openMessage(0), 'permanent', 'after release');
});

t.test('wrong S= values and many RETRs at once still give the true bytes', async (t) => {
  const root = t.testdir();
  const fixtures = fixtureMessages();
  const crlf = fixtures.find((f) => f.file === 'crlf-stored.eml')?.bytes ?? Buffer.alloc(0);
  const lf = fixtures.find((f) => f.file === 'lf-plain.eml')?.bytes ?? Buffer.alloc(0);
  const big = Buffer.concat(Array.from({ length: 2000 }, () => lf));
  const cur: Record<string, Buffer> = {
    [`1700000000.M0P1Q1.h,S=${lf.length - 10}:2,S`]: lf, // S= too small
    [`1700000001.M0P1Q1.h,S=${lf.length + 10}:2,S`]: lf, // S= too large
    [`1700000002.M0P1Q1.h,S=${crlf.length}:2,S`]: crlf, // already wire form: must not alias the read buffer
    [`1700000003.M0P1Q1.h,S=10:2,S`]: big, // says small, is large: streamed
  };
  const variants = Array.from({ length: 40 }, (_, i) => Buffer.concat([Buffer.from(`X-Copy: ${i}\r\n`), crlf]));
  variants.forEach((v, i) => {
    cur[`1700000100.M${i}P1Q1.h,S=${v.length}:2,S`] = v;
  });
  makeMaildir(path.join(root, 'alice'), { cur });
  const s = await store(t, root);
  const drop = await s.openMaildrop(alice);
  const stored = [lf, lf, crlf, big, ...variants];
  // All at once, then one after another with every stream read only at the end
  // (a pipelining client): no message may share memory with another.
  const parallel = await Promise.all(stored.map((_, i) => drop.openMessage(i)));
  const sequential = [];
  for (let i = 0; i < stored.length; i++) sequential.push(await drop.openMessage(i));
  for (const [what, streams] of [
    ['parallel', parallel],
    ['sequential', sequential],
  ] as const) {
    const sent = await Promise.all(streams.map((st) => readAll(st)));
    stored.forEach((bytes, i) => t.ok(sent[i]?.equals(referenceWire(bytes)), `${what}: message ${i + 1}`));
  }
  await drop.release();
});

t.test('a streamed message honours backpressure and can be abandoned', async (t) => {
  const root = t.testdir();
  const big = Buffer.alloc(3 * 1024 * 1024, 'abcdefghij\n');
  makeMaildir(path.join(root, 'alice'), { cur: { '1700000000.M0P1Q1.h:2,S': big } });
  const s = await store(t, root);
  const drop = await s.openMaildrop(alice);
  let received = 0;
  let maxBuffered = 0;
  const stream = await drop.openMessage(0);
  await pipeline(
    stream,
    new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        maxBuffered = Math.max(maxBuffered, stream.readableLength);
        setImmediate(cb);
      },
    }),
  );
  t.equal(received, referenceWire(big).length);
  t.ok(maxBuffered <= 256 * 1024, `reader stays bounded (${maxBuffered} bytes buffered)`);
  // Abandon midway: destroy closes the file; the maildrop still works.
  const abandoned = await drop.openMessage(0);
  abandoned.destroy();
  await new Promise((resolve) => abandoned.once('close', resolve));
  t.equal((await readAll(await drop.openMessage(0))).length, referenceWire(big).length);
  await drop.release();
});

t.test('one maildrop per user at a time', async (t) => {
  const root = t.testdir();
  const s = await store(t, root);
  const other = await store(t, root);
  const drop = await s.openMaildrop(alice);
  await rejectsKind(t, s.openMaildrop(alice), 'in-use', 'same store');
  await rejectsKind(t, other.openMaildrop(alice), 'in-use', 'another store');
  const bob = await other.openMaildrop({ name: 'bob' });
  await bob.release();
  await drop.release();
  const again = await other.openMaildrop(alice);
  await again.release();
});

t.test('messages that vanish or move under another reader', async (t) => {
  const root = t.testdir();
  const dir = makeMaildir(path.join(root, 'alice'), {
    new: { '1700000000.M0P1Q1.h': 'one\n', '1700000001.M0P1Q1.h': 'two\n' },
    cur: { '1700000002.M0P1Q1.h:2,S': 'three\n' },
  });
  const s = await store(t, root);
  const drop = await s.openMaildrop(alice);
  unlinkSync(path.join(dir, 'new', '1700000000.M0P1Q1.h'));
  await rejectsKind(t, drop.openMessage(0), 'not-found', 'removed');
  // mutt marks one read, another changes flags: same base, new name.
  renameSync(path.join(dir, 'new', '1700000001.M0P1Q1.h'), path.join(dir, 'cur', '1700000001.M0P1Q1.h:2,S'));
  renameSync(path.join(dir, 'cur', '1700000002.M0P1Q1.h:2,S'), path.join(dir, 'cur', '1700000002.M0P1Q1.h:2,RS'));
  t.equal((await readAll(await drop.openMessage(1))).toString(), 'two\r\n');
  t.equal((await readAll(await drop.openMessage(2))).toString(), 'three\r\n');
  // QUIT deletes the moved one where it is now.
  const result = await drop.commit({ deleted: new Set([1]), retrieved: new Set([1, 2]) });
  t.same(result, { deleted: 1, seen: 0 });
  t.same(readdirSync(path.join(dir, '.Trash', 'cur')), ['1700000001.M0P1Q1.h:2,S']);
});

t.test('QUIT in trash mode: Trash keeps the base name, Seen moves new/ to cur/', async (t) => {
  const root = t.testdir();
  const dir = makeMaildir(path.join(root, 'alice'), {
    new: { '1700000000.M0P1Q1.h,S=4,W=5': 'one\n', '1700000001.M0P1Q1.h,S=4,W=5': 'two\n' },
    cur: { '1700000002.M0P1Q1.h,S=6,W=7:2,S': 'three\n' },
  });
  const s = await store(t, root);
  const first = await s.openMaildrop(alice);
  const uidls = first.messages.map((m) => m.uidl);
  t.same(uidls, ['1700000000.M0P1Q1.h,S=4,W=5', '1700000001.M0P1Q1.h,S=4,W=5', '1700000002.M0P1Q1.h,S=6,W=7']);
  const result = await first.commit({ deleted: new Set([2]), retrieved: new Set([0, 2]) });
  t.same(result, { deleted: 1, seen: 1 });
  await rejectsKind(t, first.commit({ deleted: new Set(), retrieved: new Set() }), 'permanent', 'commit twice');
  t.same(readdirSync(path.join(dir, 'cur')).sort(), ['1700000000.M0P1Q1.h,S=4,W=5:2,S']);
  t.same(readdirSync(path.join(dir, 'new')), ['1700000001.M0P1Q1.h,S=4,W=5']);
  t.same(readdirSync(path.join(dir, '.Trash', 'cur')), ['1700000002.M0P1Q1.h,S=6,W=7:2,S']);
  t.notOk(existsSync(path.join(dir, 'maildird.lock')), 'lock released by commit');
  const second = await s.openMaildrop(alice);
  t.same(
    second.messages.map((m) => m.uidl),
    uidls.slice(0, 2),
    'UIDLs unchanged by the Seen move',
  );
  await second.release();
  // Restore from Trash: the same UIDL comes back.
  renameSync(path.join(dir, '.Trash', 'cur', '1700000002.M0P1Q1.h,S=6,W=7:2,S'), path.join(dir, 'cur', '1700000002.M0P1Q1.h,S=6,W=7:2,S'));
  const third = await s.openMaildrop(alice);
  t.same(third.messages.map((m) => m.uidl), uidls);
  await third.release();
});

t.test('QUIT in expunge mode unlinks; release and a dropped session change nothing', async (t) => {
  const root = t.testdir();
  const dir = makeMaildir(path.join(root, 'alice'), {
    new: { '1700000000.M0P1Q1.h': 'one\n', '1700000001.M0P1Q1.h': 'two\n' },
  });
  const s = await store(t, root, { deletionMode: 'expunge', infoSeparator: ';' });
  const dropped = await s.openMaildrop(alice);
  await dropped.release();
  t.equal(readdirSync(path.join(dir, 'new')).length, 2, 'release deletes nothing');
  const drop = await s.openMaildrop(alice);
  const result = await drop.commit({ deleted: new Set([0]), retrieved: new Set([1]) });
  t.same(result, { deleted: 1, seen: 1 });
  t.same(readdirSync(path.join(dir, 'new')), []);
  t.same(readdirSync(path.join(dir, 'cur')), ['1700000001.M0P1Q1.h;2,S'], 'configured separator');
  t.notOk(existsSync(path.join(dir, '.Trash')));
});

t.test('a failed batch is undone and the lock still released', async (t) => {
  const root = t.testdir();
  const dir = makeMaildir(path.join(root, 'alice'), {
    cur: { '1700000000.M0P1Q1.h:2,S': 'one\n', '1700000001.M0P1Q1.h:2,S': 'two\n' },
  });
  const fs = new FsRecorder();
  const s = await store(t, root, { fs });
  const drop = await s.openMaildrop(alice);
  fs.fail({ op: 'link', skip: 1, times: 1, code: 'EIO' });
  await rejectsKind(t, drop.commit({ deleted: new Set([0, 1]), retrieved: new Set() }), 'temporary');
  t.same(readdirSync(path.join(dir, 'cur')).sort(), ['1700000000.M0P1Q1.h:2,S', '1700000001.M0P1Q1.h:2,S']);
  t.notOk(existsSync(path.join(dir, 'maildird.lock')));
});

t.test('leftover journals are rolled forward at start and at login', async (t) => {
  const root = t.testdir();
  const journal = (dir: string) =>
    writeFileSync(
      path.join(dir, 'maildird-batch.journal'),
      `${JSON.stringify({ 'maildird-batch': 1, mode: 'expunge', entries: 1 })}\n${JSON.stringify({ from: 'cur/1700000000.M0P1Q1.h:2,S', to: null })}\n`,
    );
  for (const user of ['alice', 'bob']) {
    const dir = makeMaildir(path.join(root, user), { cur: { '1700000000.M0P1Q1.h:2,S': 'x\n', '1700000001.M0P1Q1.h:2,S': 'y\n' } });
    journal(dir);
  }
  const s = await store(t, root);
  for (const user of ['alice', 'bob']) {
    t.notOk(existsSync(path.join(root, user, 'maildird-batch.journal')), `${user}: recovered at start`);
    t.same(readdirSync(path.join(root, user, 'cur')), ['1700000001.M0P1Q1.h:2,S']);
  }
  journal(path.join(root, 'alice'));
  writeFileSync(path.join(root, 'alice', 'cur', '1700000000.M0P1Q1.h:2,S'), 'x\n');
  const drop = await s.openMaildrop(alice);
  t.equal(drop.messages.length, 1, 'rolled forward before the listing');
  await drop.release();
});

t.test('stale tmp files are swept at login', async (t) => {
  const root = t.testdir();
  const dir = makeMaildir(path.join(root, 'alice'), {
    tmp: { old: { content: 'x', mtime: 1_000_000_000 }, fresh: 'y' },
  });
  const { logger, records } = captureLogger('warn');
  const s = await store(t, root, { logger });
  const drop = await s.openMaildrop(alice);
  await drop.release();
  t.same(readdirSync(path.join(dir, 'tmp')), ['fresh']);
  t.ok(records.some((r) => JSON.stringify(r).includes('old')));
});

t.test('path escapes are refused (invariant 4)', async (t) => {
  const base = t.testdir({ outside: { secret: 'secret\n', cur: { '1700000000.M0P1Q1.x:2,S': 'outside\n' } } });
  const root = path.join(base, 'root');
  mkdirSync(root);
  const s = await store(t, root);
  for (const name of ['..', '.', '', 'a/b', '../outside', 'x\0y', 'x\ny', '/etc']) {
    await rejectsKind(t, s.openMaildrop({ name }), 'invalid-name', JSON.stringify(name));
    const [outcome] = await s.deliver({ recipients: [{ name }], content: Buffer.from('x\n') });
    t.equal(outcome?.ok, false, `deliver ${JSON.stringify(name)} refused`);
  }
  symlinkSync(path.join(base, 'outside'), path.join(root, 'evil'));
  await rejectsKind(t, s.openMaildrop({ name: 'evil' }), 'invalid-name', 'user folder symlinked out');
  mkdirSync(path.join(root, 'carol'));
  symlinkSync(path.join(base, 'outside', 'cur'), path.join(root, 'carol', 'cur'));
  await rejectsKind(t, s.openMaildrop({ name: 'carol' }), 'invalid-name', 'cur/ symlinked out');
  const dave = makeMaildir(path.join(root, 'dave'), { cur: { '1700000001.M0P1Q1.ok:2,S': 'ok\n' } });
  symlinkSync(path.join(base, 'outside', 'secret'), path.join(dave, 'cur', '1700000000.M0P1Q1.link:2,S'));
  const drop = await s.openMaildrop({ name: 'dave' });
  t.equal(drop.messages.length, 1, 'a symlinked message is not listed');
  // A message swapped for a symlink after the listing is not followed.
  unlinkSync(path.join(dave, 'cur', '1700000001.M0P1Q1.ok:2,S'));
  symlinkSync(path.join(base, 'outside', 'secret'), path.join(dave, 'cur', '1700000001.M0P1Q1.ok:2,S'));
  const err = await drop.openMessage(0).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof Error && err.name === 'StorageError', 'refused');
  await drop.release();
  t.equal(readFileSync(path.join(base, 'outside', 'secret'), 'utf8'), 'secret\n');
});

t.test('listings: delivered mail shows up, a warm login reads no directory', async (t) => {
  const root = t.testdir();
  makeMaildir(path.join(root, 'alice'), { cur: { '1700000000.M0P1Q1.h,S=2,W=3:2,S': 'a\n' } });
  // Directories last changed a minute ago, as in a tree at rest (a change
  // within the last second is always rescanned, see scan.test.ts).
  const fs = new FsRecorder({
    ...nodeFs,
    async stat(p) {
      const st = await nodeFs.stat(p);
      if (st.isDirectory()) {
        st.mtimeMs -= 60_000;
        st.ctimeMs -= 60_000;
      }
      return st;
    },
  });
  const s = await store(t, root, { fs });
  const first = await s.openMaildrop(alice);
  t.equal(first.messages.length, 1);
  await first.release();
  const [outcome] = await s.deliver({ recipients: [alice], content: Buffer.from('Subject: hi\r\n\r\nbody\r\n') });
  t.equal(outcome?.ok, true);
  const second = await s.openMaildrop(alice);
  t.equal(second.messages.length, 2, 'delivery seen at once');
  t.equal(second.messages[1]?.size, 'Subject: hi\r\n\r\nbody\r\n'.length);
  t.equal(s.stats().delivered, 1);
  await second.release();
  fs.reset();
  const third = await s.openMaildrop(alice);
  await third.release();
  // A warm login may read tmp/ (the sweep is hourly) but never cur/ or new/.
  t.same(
    fs.ops('readdirWithTypes').map((c) => c.path),
    [],
  );
  t.equal(fs.ops('readdir', /\/(cur|new)$/).length, 0);
});

t.test('a wrong W= is served truthfully, logged and corrected for the next session', async (t) => {
  const root = t.testdir();
  makeMaildir(path.join(root, 'alice'), { cur: { '1700000000.M0P1Q1.h,S=2,W=99:2,S': 'a\n' } });
  const { logger, records } = captureLogger('warn');
  const s = await store(t, root, { logger });
  const drop = await s.openMaildrop(alice);
  t.equal(drop.messages[0]?.size, 99, 'the name is trusted for the listing');
  t.equal((await readAll(await drop.openMessage(0))).toString(), 'a\r\n');
  await drop.release();
  t.match(records, [{ msg: /size differs/, listed: 99, actual: 3 }]);
  const again = await s.openMaildrop(alice);
  t.equal(again.messages[0]?.size, 3);
  await again.release();
  const otherProcess = await store(t, root);
  const fromFile = await otherProcess.openMaildrop(alice);
  t.equal(fromFile.messages[0]?.size, 3, 'persisted in the cache file');
  await fromFile.release();
});

t.test('flat folders', async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'erin');
  writeFiles(dir, { '.keep': '', 'welcome.eml': 'Subject: w\n\nhello\n', 'second.eml': { content: 'b\n', mtime: 2_000_000_000 } });
  const s = await store(t, root);
  const drop = await s.openMaildrop({ name: 'erin' });
  t.same(
    drop.messages.map((m) => m.uidl),
    ['welcome', 'second'],
  );
  t.equal((await readAll(await drop.openMessage(0))).toString(), 'Subject: w\r\n\r\nhello\r\n');
  await drop.commit({ deleted: new Set([0]), retrieved: new Set([1]) });
  t.same(readdirSync(path.join(dir, '.Trash')), ['welcome.eml']);
  t.ok(existsSync(path.join(dir, 'second.eml')), 'no Seen step in a flat folder');
  t.notOk(existsSync(path.join(dir, 'cur')), 'still flat');
  const [outcome] = await s.deliver({ recipients: [{ name: 'erin' }], content: Buffer.from('x\r\n') });
  t.equal(outcome?.ok, true);
  const again = await s.openMaildrop({ name: 'erin' });
  t.equal(again.messages.length, 2);
  await again.release();
});

t.test("uidlMode 'dovecot' gives Dovecot's UIDLs to messages it listed", async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'alice');
  cpSync(path.join(FIXTURES_DIR, 'dovecot-uidlist', 'tree'), dir, { recursive: true });
  writeFileSync(path.join(dir, 'new', '1700000009.M0P1Q9.after-dovecot'), 'later\n');
  const expected = JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'dovecot-uidlist', 'expected.json'), 'utf8')) as {
    sessions: { uidl: string[] }[];
  };
  const s = await store(t, root, { uidlMode: 'dovecot' });
  const drop = await s.openMaildrop(alice);
  t.same(
    drop.messages.map((m, i) => `${i + 1} ${m.uidl}`),
    [...(expected.sessions[1]?.uidl ?? []), '6 1700000009.M0P1Q9.after-dovecot'],
  );
  await drop.release();
  const again = await s.openMaildrop(alice);
  t.same(
    again.messages.map((m) => m.uidl),
    drop.messages.map((m) => m.uidl),
    'stable',
  );
  await again.release();
  const plain = await store(t, root);
  const byName = await plain.openMaildrop(alice);
  t.equal(byName.messages[3]?.uidl, '1700000004.M400000P1000Q4.fixture,S=466,W=481', 'filename mode ignores the uidlist');
  await byName.release();
});

t.test('close releases what is left', async (t) => {
  const root = t.testdir();
  const s = await MaildirStore.open({ root });
  await s.openMaildrop(alice);
  await s.close();
  t.notOk(existsSync(path.join(root, 'alice', 'maildird.lock')));
  await rejectsKind(t, s.openMaildrop(alice), 'temporary');
});

t.test('purgeTrash touches only message files of the Trash: no dot files, folders, symlinks, tmp/, or the maildrop', async (t) => {
  const base = t.testdir({
    outside: { 'precious.eml': 'Subject: outside the Trash\n\nkeep me\n' },
    root: {
      alice: {
        cur: { '1700000001.M1P1Q1.host:2,S': 'Subject: in the maildrop\n\nx\n' },
        new: {},
        tmp: {},
        '.Trash': {
          cur: { '1700000000.M1P1Q1.host:2,S': 'Subject: old\n\ntrash\n', '.hidden': 'dot file', sub: {} },
          new: { '1700000000.M2P1Q2.host': 'Subject: also old\n\n' },
          tmp: { '1700000000.M3P1Q3.host': 'half written' },
          'dovecot-uidlist': '3 V1 N1\n',
        },
        maildirsize: '0S,0C\n100 2\n',
      },
      flat: {
        'kept.eml': 'Subject: maildrop\n\n',
        '.Trash': { 'a.eml': 'Subject: trashed\n\n', 'notes.txt': 'not a message', '.b.eml.tmp': 'x' },
      },
    },
  });
  const outside = path.join(base, 'outside');
  const root = path.join(base, 'root');
  symlinkSync(path.join(outside, 'precious.eml'), path.join(root, 'alice', '.Trash', 'cur', 'link:2,S'));
  const s = await store(t, root, { countTrashInQuota: true });
  const far = new Date(Date.now() + 86_400_000);
  const old = Buffer.byteLength('Subject: old\n\ntrash\n') + Buffer.byteLength('Subject: also old\n\n');
  t.same(await s.purgeTrash(alice, far), { purged: 2, bytes: old });
  t.same(readdirSync(path.join(root, 'alice', '.Trash', 'cur')).sort(), ['.hidden', 'link:2,S', 'sub']);
  t.same(readdirSync(path.join(root, 'alice', '.Trash', 'new')), []);
  t.same(readdirSync(path.join(root, 'alice', '.Trash', 'tmp')), ['1700000000.M3P1Q3.host'], 'tmp/ is the tmp sweeper\'s');
  t.ok(existsSync(path.join(root, 'alice', '.Trash', 'dovecot-uidlist')));
  t.ok(existsSync(path.join(outside, 'precious.eml')), 'the symlink target is untouched');
  t.same(readdirSync(path.join(root, 'alice', 'cur')), ['1700000001.M1P1Q1.host:2,S'], 'the maildrop is untouched');
  t.match(readFileSync(path.join(root, 'alice', 'maildirsize'), 'utf8'), new RegExp(`\\n-${old} -2\\n$`), 'quota delta recorded');

  t.same(await s.purgeTrash({ name: 'flat' }, far), { purged: 1, bytes: Buffer.byteLength('Subject: trashed\n\n') });
  t.same(readdirSync(path.join(root, 'flat', '.Trash')).sort(), ['.b.eml.tmp', 'notes.txt']);
  t.ok(existsSync(path.join(root, 'flat', 'kept.eml')));

  t.same(await s.purgeTrash({ name: 'ghost' }, far), { purged: 0, bytes: 0 });
  t.notOk(existsSync(path.join(root, 'ghost')), 'no folder is created');
  await rejectsKind(t, s.purgeTrash({ name: '../escape' }, far), 'invalid-name');
});

t.test('purgeTrash refuses a Trash symlinked out of the root', async (t) => {
  const base = t.testdir({
    outside: { cur: { '1700000000.M1P1Q1.host:2,S': 'Subject: outside\n\n' }, new: {}, tmp: {} },
    root: { alice: { cur: {}, new: {}, tmp: {} } },
  });
  const outside = path.join(base, 'outside');
  const root = path.join(base, 'root');
  symlinkSync(outside, path.join(root, 'alice', '.Trash'));
  const s = await store(t, root);
  await rejectsKind(t, s.purgeTrash(alice, new Date(Date.now() + 86_400_000)), 'invalid-name');
  t.same(readdirSync(path.join(outside, 'cur')), ['1700000000.M1P1Q1.host:2,S']);
});

/** What readMessage must give for stored bytes: the reference wire form, stuffed and terminated. */
function framedReference(stored: Buffer): Buffer {
  return framedOracle(referenceWire(stored));
}

t.test('readMessage: small files with a known size are read with one synchronous read, others as before', async (t) => {
  const root = t.testdir();
  const fixtures = fixtureMessages();
  const cur: Record<string, Buffer> = {};
  fixtures.forEach((f, i) => {
    const unique = `${1700000000 + i}.M0P1Q${i}.host`;
    cur[`${i % 2 === 0 ? sizedName(unique, f.bytes) : unique}:2,S`] = f.bytes;
  });
  const lf = fixtures.find((f) => f.file === 'lf-plain.eml')?.bytes ?? Buffer.alloc(0);
  const big = Buffer.concat(Array.from({ length: 2000 }, () => lf));
  cur[`1800000000.M0P1Q1.h,S=${lf.length - 10}:2,S`] = lf; // S= too small (the scan's size is used)
  cur[`1800000001.M0P1Q1.h,S=${lf.length + 10}:2,S`] = lf; // S= too large: a short read is the end
  cur[`${sizedName('1800000002.M0P1Q1.h', big)}:2,S`] = big; // over 128 KB: the asynchronous path
  makeMaildir(path.join(root, 'alice'), { cur });
  const fs = new FsRecorder();
  const s = await store(t, root, { fs });
  const drop = await s.openMaildrop(alice);
  const stored = [...fixtures.map((f) => f.bytes), lf, lf, big];
  fs.reset();
  for (const [i, bytes] of stored.entries()) {
    const framed = await drop.readMessage(i);
    t.ok(framed.bytes.equals(framedReference(bytes)), `message ${i + 1}: stuffed wire bytes and terminator`);
    t.equal(framed.wireSize, referenceWire(bytes).length, `message ${i + 1}: wire size`);
  }
  t.equal(fs.ops('readSync').length, fixtures.length + 2, 'one synchronous read per small message');
  t.same(
    fs.ops('open', /\/cur\//).map((c) => path.basename(c.path)),
    [`${sizedName('1800000002.M0P1Q1.h', big)}:2,S`],
    'only the large one is opened asynchronously',
  );
  // Two reads of the same message are two buffers: the shared read buffer never leaks out.
  const a = await drop.readMessage(0);
  const b = await drop.readMessage(1);
  t.ok(a.bytes.equals(framedReference(stored[0] as Buffer)), 'the first result is intact after the next read');
  t.not(a.bytes.buffer, b.bytes.buffer);
  await rejectsKind(t, drop.readMessage(stored.length), 'not-found', 'out of range');
  await drop.release();
  await rejectsKind(t, drop.readMessage(0), 'permanent', 'after release');
});

t.test('readMessage: vanished, moved, symlinked and failing files', async (t) => {
  const base = t.testdir({ outside: { secret: 'secret\n' } });
  const root = path.join(base, 'root');
  mkdirSync(root);
  const dir = makeMaildir(path.join(root, 'alice'), {
    new: { '1700000000.M0P1Q1.h,S=4': 'one\n', '1700000001.M0P1Q1.h,S=4': 'two\n' },
    cur: { '1700000002.M0P1Q1.h,S=6:2,S': 'three\n', '1700000003.M0P1Q1.h,S=5:2,S': '.four\n' },
  });
  const fs = new FsRecorder();
  const s = await store(t, root, { fs });
  const drop = await s.openMaildrop(alice);
  unlinkSync(path.join(dir, 'new', '1700000000.M0P1Q1.h,S=4'));
  await rejectsKind(t, drop.readMessage(0), 'not-found', 'removed by another program');
  renameSync(path.join(dir, 'new', '1700000001.M0P1Q1.h,S=4'), path.join(dir, 'cur', '1700000001.M0P1Q1.h,S=4:2,S'));
  t.equal((await drop.readMessage(1)).bytes.toString(), 'two\r\n.\r\n', 'found where another reader moved it');
  unlinkSync(path.join(dir, 'cur', '1700000002.M0P1Q1.h,S=6:2,S'));
  symlinkSync(path.join(base, 'outside', 'secret'), path.join(dir, 'cur', '1700000002.M0P1Q1.h,S=6:2,S'));
  const err = await drop.readMessage(2).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof Error && err.name === 'StorageError', 'a message swapped for a symlink is not followed');
  fs.fail({ op: 'readSync', code: 'EIO', times: 1 });
  t.equal((await drop.readMessage(3)).bytes.toString(), '..four\r\n.\r\n', 'a failed synchronous read is retried on the asynchronous path');
  fs.fail({ op: 'readSync', code: 'EIO', times: 1 });
  fs.fail({ op: 'read', code: 'EIO', times: 1 });
  await rejectsKind(t, drop.readMessage(3), 'temporary', 'an I/O error on both paths');
  await drop.release();
});
