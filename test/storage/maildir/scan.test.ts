import t from 'tap';
import * as path from 'node:path';
import { mkdirSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isTrustedAt, scanMaildrop, TRUST_MARGIN_MS, type ScanOptions } from '../../../src/storage/maildir/scan.js';
import { maildirPaths } from '../../../src/storage/maildir/layout.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';
import {
  captureLogger,
  fixtureMessages,
  makeMaildir,
  referenceWire,
  sizedName,
  writeFiles,
} from '../../helpers/maildir-tree.js';

const sha = (b: string | Buffer) => `~${createHash('sha256').update(b).digest('hex').slice(0, 40)}`;
const later = () => Date.now() + 10 * TRUST_MARGIN_MS;

t.test('names with W=: sizes and order from readdir alone', async (t) => {
  const msg = Buffer.from('Subject: a\n\nbody\n');
  const dir = makeMaildir(t.testdir(), {
    cur: {
      [`${sizedName('1700000002.M5P1Q1.h', msg)}:2,S`]: msg,
      [`${sizedName('1700000001.M999999P1Q2.h', msg)}:2,RS`]: msg,
    },
    new: { [sizedName('1700000002.M4P1Q3.h', msg)]: msg },
  });
  const fs = new FsRecorder();
  const { listing, skipped } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs });
  t.same(
    listing.entries.map((e) => [e.dir, e.base]),
    [
      ['cur', '1700000001.M999999P1Q2.h,S=17,W=20'],
      ['new', '1700000002.M4P1Q3.h,S=17,W=20'],
      ['cur', '1700000002.M5P1Q1.h,S=17,W=20'],
    ],
  );
  t.same(
    listing.entries.map((e) => e.size),
    [20, 20, 20],
  );
  t.equal(listing.entries[0]?.uidl, '1700000001.M999999P1Q2.h,S=17,W=20');
  t.equal(listing.entries[0]?.storedSize, 17);
  t.equal(listing.entries[0]?.path, path.join(dir, 'cur', '1700000001.M999999P1Q2.h,S=17,W=20:2,RS'));
  t.same(skipped, []);
  t.equal(fs.ops('open').length, 0, 'no file opened');
  t.same(
    fs.ops('stat').map((c) => path.basename(c.path)).sort(),
    ['cur', 'new'],
    'only the two directories are stat-ed',
  );
});

t.test('names without W=: sizes computed from the bytes, once', async (t) => {
  const fixtures = fixtureMessages();
  t.ok(fixtures.length >= 8, 'the fixture corpus is there');
  const cur: Record<string, Buffer> = {};
  fixtures.forEach((f, i) => {
    cur[`${1700000000 + i}.M0P1Q${i}.host:2,S`] = f.bytes;
  });
  cur['1800000000.M0P1Q0.empty,S=0'] = Buffer.alloc(0);
  const dir = makeMaildir(t.testdir(), { cur });
  const paths = maildirPaths(dir);
  const fs = new FsRecorder();
  const first = await scanMaildrop(paths, 'maildir', { fs, now: later });
  t.equal(first.listing.entries.length, fixtures.length + 1);
  fixtures.forEach((f, i) => {
    const e = first.listing.entries[i];
    t.equal(e?.size, referenceWire(f.bytes).length, `${f.file} wire size`);
    t.equal(e?.storedSize, f.bytes.length, `${f.file} stored size`);
  });
  t.equal(first.listing.entries.at(-1)?.size, 0, 'empty file');
  t.equal(fs.ops('open').length, fixtures.length + 1, 'each file read once');

  // Same directories: the listing comes back as it was, nothing read.
  fs.reset();
  const again = await scanMaildrop(paths, 'maildir', { fs, previous: first.listing, now: later });
  t.equal(again.isChanged, false);
  t.equal(again.listing, first.listing);
  t.equal(fs.ops('readdirWithTypes').length, 0);
  t.equal(fs.ops('open').length, 0);

  // A new message: cur/ is read again, but known names are not re-measured.
  writeFileSync(path.join(paths.cur, '1900000000.M0P1Q9.host:2,'), 'x\n');
  fs.reset();
  const third = await scanMaildrop(paths, 'maildir', { fs, previous: first.listing, now: later });
  t.equal(third.isChanged, true);
  t.same(third.rescanned, ['cur']);
  t.equal(third.listing.entries.length, fixtures.length + 2);
  t.equal(third.listing.entries.at(-1)?.size, 3);
  t.same(
    fs.ops('open').map((c) => path.basename(c.path)),
    ['1900000000.M0P1Q9.host:2,'],
  );
});

t.test('order: name time, then mtime, then name', async (t) => {
  const dir = makeMaildir(t.testdir(), {
    cur: {
      'zzz-no-time:2,S': { content: 'a', mtime: 50 },
      'aaa-no-time:2,S': { content: 'a', mtime: 2_000_000_000 },
      '100.M5P1Q1.h:2,S': { content: 'a', mtime: 7 },
      '100.M3P1Q1.h:2,S': { content: 'a', mtime: 7 },
      '99.M999999P1Q1.h:2,S': { content: 'a', mtime: 7 },
      '100.P3.b:2,S': { content: 'a', mtime: 300 },
      '100.P2.a:2,S': { content: 'a', mtime: 100 },
      '100.P1.c:2,S': { content: 'a', mtime: 200 },
      '100.P9.same:2,S': { content: 'a', mtime: 200 },
    },
  });
  const { listing } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs });
  t.same(
    listing.entries.map((e) => e.base),
    [
      'zzz-no-time', // mtime 50 s: older than any name time here
      '99.M999999P1Q1.h',
      '100.P2.a', // 100.000000, tie of four broken by mtime 100
      '100.P1.c', // mtime 200, name "100.P1.c" < "100.P9.same"
      '100.P9.same', // mtime 200
      '100.P3.b', // mtime 300
      '100.M3P1Q1.h',
      '100.M5P1Q1.h',
      'aaa-no-time', // mtime in 2033
    ],
  );
  t.ok(listing.entries.every((e) => e.size === 3));
});

t.test('UIDL rules: plain, hash fallback, duplicates', async (t) => {
  const long = `1700000000.M1P1Q1.${'h'.repeat(80)}`;
  const dir = makeMaildir(t.testdir(), {
    cur: {
      [`${long}:2,S`]: 'a',
      '1700000001.M1P1Q1.caf\u00e9:2,S': 'a',
      '1700000002.M1P1Q1.dup:2,S': 'in cur',
      '1700000003.M1P1Q1.twice:2,S': 'a',
      '1700000003.M1P1Q1.twice:2,RS': 'b',
    },
    new: { '1700000002.M1P1Q1.dup': 'in new' },
  });
  const { listing } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs });
  const byName = new Map(listing.entries.map((e) => [`${e.dir}/${e.name}`, e.uidl]));
  t.equal(byName.get(`cur/${long}:2,S`), sha(long), 'over 70 octets: hashed');
  t.equal(byName.get('cur/1700000001.M1P1Q1.caf\u00e9:2,S'), sha(Buffer.from('1700000001.M1P1Q1.caf\u00e9')), '8-bit');
  t.equal(byName.get('cur/1700000002.M1P1Q1.dup:2,S'), '1700000002.M1P1Q1.dup', 'cur keeps the plain UIDL');
  t.equal(byName.get('new/1700000002.M1P1Q1.dup'), sha('new/1700000002.M1P1Q1.dup'), 'new gets new/<name> hashed');
  t.equal(byName.get('cur/1700000003.M1P1Q1.twice:2,RS'), '1700000003.M1P1Q1.twice', 'first name keeps it');
  t.equal(byName.get('cur/1700000003.M1P1Q1.twice:2,S'), sha('cur/1700000003.M1P1Q1.twice:2,S'));
  t.equal(new Set(listing.entries.map((e) => e.uidl)).size, listing.entries.length, 'all distinct');
  for (const e of listing.entries) t.match(e.uidl, /^[\x21-\x7e]{1,70}$/);
});

t.test('unlistable files are skipped and logged, never fatal', async (t) => {
  const base = t.testdir({ outside: { secret: 'top secret\n' } });
  const dir = makeMaildir(path.join(base, 'user'), {
    cur: { '.keep': '', ':2,S': 'no base', '1700000000.M1P1Q1.ok:2,S': 'fine\n' },
    new: { '.nfs0001': 'dot file' },
  });
  mkdirSync(path.join(dir, 'cur', '1700000001.M1P1Q1.folder'));
  symlinkSync(path.join(base, 'outside', 'secret'), path.join(dir, 'cur', '1700000002.M1P1Q1.link:2,S'));
  writeFileSync(path.join(dir, 'new', '1700000003.M1P1Q1.bad'), '');
  writeFileSync(Buffer.concat([Buffer.from(path.join(dir, 'new', '1700000004.M1P1Q1.raw')), Buffer.from([0xff])]), 'x');
  const { logger, records } = captureLogger('warn');
  const { listing, skipped } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs, logger });
  t.same(
    listing.entries.map((e) => e.name),
    ['1700000000.M1P1Q1.ok:2,S', '1700000003.M1P1Q1.bad'],
  );
  const reasons = new Map(skipped.map((s) => [path.basename(s.path), s.reason]));
  t.equal(reasons.get(':2,S'), 'not a message file name');
  t.equal(reasons.get('1700000001.M1P1Q1.folder'), 'a folder');
  t.equal(reasons.get('1700000002.M1P1Q1.link:2,S'), 'a symbolic link');
  t.equal(reasons.get('1700000004.M1P1Q1.raw\uFFFD'), 'name is not valid UTF-8');
  t.equal(skipped.length, 4, 'dot files are not even reported');
  t.equal(records.length, 4);
  t.ok(records.every((r) => r['level'] === 40 && r['msg'] === 'maildrop file not listed'));
});

t.test('a file that vanishes during the scan is dropped', async (t) => {
  const dir = makeMaildir(t.testdir(), {
    new: { '1700000000.M1P1Q1.a': 'a\n', '1700000001.M1P1Q1.b': 'b\n' },
  });
  const fs = new FsRecorder();
  fs.fail({ op: 'open', path: /\.a$/, code: 'ENOENT' });
  const { listing, skipped } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs });
  t.same(
    listing.entries.map((e) => e.name),
    ['1700000001.M1P1Q1.b'],
  );
  t.same(skipped, [], 'a vanished file is not an anomaly');
  fs.clearFaults();
  fs.fail({ op: 'open', path: /\.a$/, code: 'EACCES' });
  const denied = await scanMaildrop(maildirPaths(dir), 'maildir', { fs });
  t.equal(denied.listing.entries.length, 1);
  t.match(denied.skipped, [{ reason: 'cannot open: EACCES' }]);
});

t.test('a duplicate whose new/ copy moved to cur/ meanwhile is not listed twice', async (t) => {
  const dir = makeMaildir(t.testdir(), { new: { '1700000000.M1P1Q1.x,S=2,W=3': 'x\n' } });
  const paths = maildirPaths(dir);
  const fs = new FsRecorder();
  // Another reader (mutt, Dovecot) moves the message between our two readdirs.
  let moved = false;
  const realReaddir = fs.readdirWithTypes.bind(fs);
  fs.readdirWithTypes = async (p: string) => {
    const result = await realReaddir(p);
    if (p === paths.new && !moved) {
      moved = true;
      renameSync(path.join(paths.new, '1700000000.M1P1Q1.x,S=2,W=3'), path.join(paths.cur, '1700000000.M1P1Q1.x,S=2,W=3:2,S'));
    }
    return result;
  };
  const { listing } = await scanMaildrop(paths, 'maildir', { fs });
  t.ok(moved);
  t.same(
    listing.entries.map((e) => [e.dir, e.uidl]),
    [['cur', '1700000000.M1P1Q1.x,S=2,W=3']],
  );
});

t.test('a Maildir with only cur/', async (t) => {
  const dir = t.testdir({ cur: { '1700000000.M1P1Q1.x:2,S': 'x\n' } });
  const { listing } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs });
  t.equal(listing.entries.length, 1);
  t.equal(listing.stamps.new, undefined);
  t.ok(listing.stamps.cur);
});

t.test('the ; and ! separators, and a configured set', async (t) => {
  const dir = makeMaildir(t.testdir(), {
    cur: { '1700000000.M1P1Q1.a;2,S': 'a', '1700000001.M1P1Q1.b!2,RS': 'b' },
  });
  const all = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs });
  t.same(
    all.listing.entries.map((e) => e.uidl),
    ['1700000000.M1P1Q1.a', '1700000001.M1P1Q1.b'],
  );
  const colonOnly = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs, separators: [':'] });
  t.same(
    colonOnly.listing.entries.map((e) => e.uidl),
    ['1700000000.M1P1Q1.a;2,S', '1700000001.M1P1Q1.b!2,RS'],
  );
});

t.test('flat folders: *.eml only, dot files never', async (t) => {
  const fixtures = fixtureMessages();
  const dir = t.testdir();
  writeFiles(dir, {
    '.keep': '',
    '.1700000000.M1P1Q1.h.tmp': 'in flight',
    'notes.txt': 'not mail',
    'maildird.lock': 'lock',
    'welcome.eml': { content: fixtures[0]?.bytes ?? '', mtime: 1_600_000_000 },
    '1700000000.M1P1Q1.h.eml': 'Subject: x\n\nbody',
    'with space.eml': { content: 'a\n', mtime: 1_600_000_001 },
  });
  mkdirSync(path.join(dir, '.Trash'));
  const paths = maildirPaths(dir);
  const first = await scanMaildrop(paths, 'flat', { fs: nodeFs });
  t.same(
    first.listing.entries.map((e) => [e.name, e.uidl, e.dir]),
    [
      ['welcome.eml', 'welcome', 'flat'],
      ['with space.eml', sha('with space'), 'flat'],
      ['1700000000.M1P1Q1.h.eml', '1700000000.M1P1Q1.h', 'flat'],
    ],
  );
  t.equal(first.listing.entries[0]?.size, referenceWire(fixtures[0]?.bytes ?? Buffer.alloc(0)).length);
  t.equal(first.listing.entries[2]?.size, 'Subject: x\r\n\r\nbody\r\n'.length);

  // Edited in place (an editor rewrote the .eml): the next scan measures it again.
  writeFileSync(path.join(dir, 'welcome.eml'), 'short\n');
  utimesSync(path.join(dir, 'welcome.eml'), 1_600_000_000, 1_600_000_000);
  const fs = new FsRecorder();
  const second = await scanMaildrop(paths, 'flat', { fs, previous: first.listing });
  t.equal(second.listing.entries[0]?.size, 7);
  t.equal(second.listing.entries[0]?.storedSize, 6);
  t.equal(fs.ops('read').length > 0, true);
});

t.test('directory stamps: granularity and outside changes', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  // A file system with 1-second timestamps, where a change in the same
  // second leaves mtime and ctime exactly as they were.
  const coarse: ScanOptions['fs'] = {
    ...nodeFs,
    async stat(p) {
      const st = await nodeFs.stat(p);
      st.mtimeMs = Math.floor(st.mtimeMs / 1000) * 1000;
      st.ctimeMs = Math.floor(st.ctimeMs / 1000) * 1000;
      return st;
    },
  };
  // Scanned right after the directory changed: not trusted.
  const first = await scanMaildrop(paths, 'maildir', { fs: coarse });
  t.equal(first.listing.stamps.cur?.isTrusted, false);
  // A delivery in the same second: the stamps cannot show it, but the
  // untrusted listing is not reused.
  writeFileSync(path.join(paths.new, '1700000001.M1P1Q1.b'), 'b\n');
  const second = await scanMaildrop(paths, 'maildir', { fs: coarse, previous: first.listing });
  t.same(
    second.listing.entries.map((e) => e.base),
    ['1700000000.M1P1Q1.a', '1700000001.M1P1Q1.b'],
  );
  // Trusted once the scan is well after the change; then reused.
  const third = await scanMaildrop(paths, 'maildir', { fs: coarse, previous: second.listing, now: later });
  t.equal(third.listing.stamps.new?.isTrusted, true);
  const fourth = await scanMaildrop(paths, 'maildir', { fs: coarse, previous: third.listing, now: later });
  t.equal(fourth.isChanged, false);
  // An outside rename new/ -> cur/ is seen.
  renameSync(path.join(paths.new, '1700000001.M1P1Q1.b'), path.join(paths.cur, '1700000001.M1P1Q1.b:2,S'));
  const fifth = await scanMaildrop(paths, 'maildir', { fs: nodeFs, previous: fourth.listing, now: later });
  t.same(
    fifth.listing.entries.map((e) => e.name),
    ['1700000000.M1P1Q1.a:2,S', '1700000001.M1P1Q1.b:2,S'],
  );
  // A change hidden by setting the directory's mtime back (rsync -t, touch -d): ctime tells.
  utimesSync(paths.cur, 1_600_000_000, 1_600_000_000);
  const sixth = await scanMaildrop(paths, 'maildir', { fs: nodeFs, previous: fifth.listing, now: later });
  t.equal(sixth.isChanged, true, 'utimes alone moves ctime');
  t.equal((await scanMaildrop(paths, 'maildir', { fs: nodeFs, previous: sixth.listing, now: later })).isChanged, false);
  writeFileSync(path.join(paths.cur, '1700000002.M1P1Q1.c:2,S'), 'c\n');
  utimesSync(paths.cur, 1_600_000_000, 1_600_000_000);
  t.equal((await nodeFs.stat(paths.cur)).mtimeMs, sixth.listing.stamps.cur?.mtimeMs, 'mtime restored');
  const seventh = await scanMaildrop(paths, 'maildir', { fs: nodeFs, previous: sixth.listing, now: later });
  t.equal(seventh.listing.entries.length, 3);
});

t.test('a missing folder and an unreadable one', async (t) => {
  const dir = t.testdir({ cur: {} });
  const paths = maildirPaths(dir);
  const empty = await scanMaildrop(paths, 'maildir', { fs: nodeFs });
  t.same(empty.listing.entries, []);
  const fs = new FsRecorder();
  fs.fail({ op: 'readdirWithTypes', code: 'EIO' });
  await t.rejects(scanMaildrop(paths, 'maildir', { fs }), { name: 'StorageError', message: /EIO/ });
});

t.test('the trust rule: one second, two for whole-second (FAT, 1 s) stamps', async (t) => {
  const fine = { mtimeMs: 1_000_000_000_123.5, ctimeMs: 1_000_000_000_100.25, ino: 1 };
  t.notOk(isTrustedAt(fine, fine.mtimeMs + 999), 'changed within the second');
  t.ok(isTrustedAt(fine, fine.mtimeMs + 1000));
  t.notOk(isTrustedAt({ ...fine, ctimeMs: fine.mtimeMs + 500 }, fine.mtimeMs + 1000), 'ctime counts too');
  const coarse = { mtimeMs: 1_000_000_000_000, ctimeMs: 1_000_000_000_000, ino: 1 };
  t.notOk(isTrustedAt(coarse, coarse.mtimeMs + 1999), 'a 2 s FAT tick');
  t.ok(isTrustedAt(coarse, coarse.mtimeMs + 2000));
});

t.test('messages renamed in bulk (Seen) keep their computed sizes without a re-read', async (t) => {
  const fresh: Record<string, string> = {};
  for (let i = 0; i < 100; i++) fresh[`${1700000000 + i}.M1P1Q${i}.getmail`] = `message ${i}\n`;
  const dir = makeMaildir(t.testdir(), { new: fresh });
  const paths = maildirPaths(dir);
  const fs = new FsRecorder();
  const first = await scanMaildrop(paths, 'maildir', { fs, now: later });
  t.equal(fs.ops('open').length, 100);
  for (const name of Object.keys(fresh)) renameSync(path.join(paths.new, name), path.join(paths.cur, `${name}:2,S`));
  fs.reset();
  const second = await scanMaildrop(paths, 'maildir', { fs, previous: first.listing, now: later });
  t.equal(fs.ops('open').length, 0, 'no file read again');
  t.same(
    second.listing.entries.map((e) => [e.dir, e.uidl, e.size]),
    first.listing.entries.map((e) => ['cur', e.uidl, e.size]),
  );
});
