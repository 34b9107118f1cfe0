import t from 'tap';
import * as path from 'node:path';
import { readFileSync, renameSync, symlinkSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import {
  ENCODE_SLICE_ENTRIES,
  ListingCache,
  decodeListing,
  encodeListing,
  encodeListingInSlices,
} from '../../../src/storage/maildir/listing-cache.js';
import { scanMaildrop, TRUST_MARGIN_MS, type Listing, type ScanEntry } from '../../../src/storage/maildir/scan.js';
import { maildirPaths, type MaildirPaths } from '../../../src/storage/maildir/layout.js';
import { nodeFs, type FsLayer } from '../../../src/storage/maildir/fs.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';
import { captureLogger, makeMaildir } from '../../helpers/maildir-tree.js';

const later = () => Date.now() + 10 * TRUST_MARGIN_MS;

/** What the store does on open: load, scan against it, save when changed. */
async function open(cache: ListingCache, paths: MaildirPaths, fs: FsLayer, now?: () => number): Promise<Listing> {
  const previous = await cache.load(paths);
  const result = await scanMaildrop(paths, 'maildir', { fs, previous, now });
  if (result.isChanged) await cache.save(paths, result.listing);
  return result.listing;
}

const names = (l: Listing) => l.entries.map((e) => `${e.dir}/${e.name}`);

t.test('encode/decode round trip, odd names included', async (t) => {
  const dir = makeMaildir(t.testdir(), {
    cur: {
      '1700000000.M1P1Q1.a,S=2,W=3:2,S': 'a\n',
      'tab\there:2,S': 'b\n',
      'new\nline': 'c',
      '"quoted"': 'd\n',
      'back\\slash': 'e\n',
      [`1700000001.M1P1Q1.${'x'.repeat(90)}:2,S`]: 'f\n',
    },
    new: { '1700000000.M1P1Q1.a,S=2,W=3': 'dup\n', 'caf\u00e9': 'g' },
  });
  const paths = maildirPaths(dir);
  const { listing } = await scanMaildrop(paths, 'maildir', { fs: nodeFs, now: later });
  t.equal(listing.entries.length, 8);
  const text = encodeListing(listing);
  const back = decodeListing(text, paths);
  t.same(back, listing);
  t.equal(text.split('\n').length, listing.entries.length + 4);
});

t.test('corrupt, torn or forged files are refused', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n', '1700000001.M1P1Q1.b:2,S': 'b\n' } });
  const paths = maildirPaths(dir);
  const { listing } = await scanMaildrop(paths, 'maildir', { fs: nodeFs, now: later });
  const good = encodeListing(listing);
  t.ok(decodeListing(good, paths));
  const lines = good.split('\n');
  const bad: Record<string, string> = {
    empty: '',
    'wrong magic': good.replace('maildird-listing 1', 'maildird-listing 2'),
    torn: good.slice(0, good.length - 20),
    'missing end': lines.slice(0, -2).join('\n'),
    'bad header': [lines[0], '{"form":"mbox"}', ...lines.slice(2)].join('\n'),
    'bad count': good.replace('"count":2', '"count":3'),
    'bad size': good.replace(/\t3\t/, '\t-3\t'),
    'path escape': good.replace('1700000000.M1P1Q1.a:2,S', '../../../etc/passwd'),
    'dot file': good.replace('1700000000.M1P1Q1.a:2,S', '.hidden'),
    'flat entry in a Maildir': good.replace(/^c\t/m, 'f\t'),
    'few fields': good.replace(/\t[^\t\n]*\n/, '\n'),
  };
  for (const [what, text] of Object.entries(bad)) t.equal(decodeListing(text, paths), undefined, what);
});

t.test('warm open: memory first, then the file; a new process reads no directory', async (t) => {
  const cur: Record<string, string> = {};
  for (let i = 0; i < 200; i++) cur[`${1700000000 + i}.M1P1Q${i}.h:2,S`] = `message ${i}\n`;
  const dir = makeMaildir(t.testdir(), { cur });
  const paths = maildirPaths(dir);
  const fs = new FsRecorder();
  const cache = new ListingCache({ fs });
  const cold = await open(cache, paths, fs, later);
  t.equal(cold.entries.length, 200);
  t.equal(fs.ops('open', /\/cur\//).length, 200, 'cold: sizes computed by reading each file');
  t.ok(existsSync(paths.listingCache), 'cache file written');

  fs.reset();
  const warm = await open(cache, paths, fs, later);
  t.equal(warm, cold, 'same listing object from memory');
  t.same(
    fs.calls.map((c) => c.op),
    ['stat', 'stat'],
    'only the two directory stamps',
  );

  fs.reset();
  const otherProcess = new ListingCache({ fs });
  const fromFile = await open(otherProcess, paths, fs, later);
  t.same(fromFile, cold);
  t.equal(fs.ops('readdirWithTypes').length, 0, 'no readdir');
  t.equal(fs.ops('open', /\/cur\//).length, 0, 'no message file opened');
  t.same(
    fs.ops('open').map((c) => path.basename(c.path)),
    ['maildird-listing.cache'],
  );
});

t.test('never stale: delivery, rename and touch in the same second', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  const cache = new ListingCache({ fs: nodeFs });
  // Real clock: each change below lands within the same second as the scan before it.
  let listing = await open(cache, paths, nodeFs);
  t.same(names(listing), ['cur/1700000000.M1P1Q1.a:2,S']);

  writeFileSync(path.join(paths.new, '1700000001.M1P1Q1.b'), 'b\n');
  listing = await open(cache, paths, nodeFs);
  t.same(names(listing), ['cur/1700000000.M1P1Q1.a:2,S', 'new/1700000001.M1P1Q1.b'], 'delivery seen');

  renameSync(path.join(paths.new, '1700000001.M1P1Q1.b'), path.join(paths.cur, '1700000001.M1P1Q1.b:2,S'));
  listing = await open(cache, paths, nodeFs);
  t.same(names(listing), ['cur/1700000000.M1P1Q1.a:2,S', 'cur/1700000001.M1P1Q1.b:2,S'], 'rename seen');

  // Touch: a file added, then the directory's times put back to what the cache recorded.
  const recorded = listing.stamps.cur;
  writeFileSync(path.join(paths.cur, '1700000002.M1P1Q1.c:2,S'), 'c\n');
  if (recorded !== undefined) utimesSync(paths.cur, recorded.mtimeMs / 1000, recorded.mtimeMs / 1000);
  listing = await open(cache, paths, nodeFs);
  t.equal(listing.entries.length, 3, 'touched-back directory seen');

  // The same through the file layer only (a fresh cache per open, as separate processes).
  writeFileSync(path.join(paths.new, '1700000003.M1P1Q1.d'), 'd\n');
  listing = await open(new ListingCache({ fs: nodeFs }), paths, nodeFs);
  t.equal(listing.entries.length, 4, 'new process sees the delivery');
});

t.test('a cache that says "trusted" is still checked against the stamps', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  const cache = new ListingCache({ fs: nodeFs });
  await open(cache, paths, nodeFs, later);
  writeFileSync(path.join(paths.new, '1700000001.M1P1Q1.b'), 'b\n');
  const listing = await open(cache, paths, nodeFs, later);
  t.equal(listing.entries.length, 2);
});

t.test('a lost or corrupt cache costs only a rescan', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  await open(new ListingCache({ fs: nodeFs }), paths, nodeFs, later);
  writeFileSync(paths.listingCache, 'garbage\n');
  const { logger, records } = captureLogger('warn');
  const cache = new ListingCache({ fs: nodeFs, logger });
  const listing = await open(cache, paths, nodeFs, later);
  t.equal(listing.entries.length, 1);
  t.match(records, [{ msg: 'listing cache unreadable; rescanning' }]);
  t.match(readFileSync(paths.listingCache, 'utf8'), /^maildird-listing 1\n/, 'rewritten');
});

t.test('the cache file is never followed through a symlink', async (t) => {
  const base = t.testdir({ victim: 'do not touch\n' });
  const dir = makeMaildir(path.join(base, 'user'), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  symlinkSync(path.join(base, 'victim'), paths.listingCache);
  const cache = new ListingCache({ fs: nodeFs });
  t.equal(await cache.load(paths), undefined);
  await open(cache, paths, nodeFs, later);
  t.equal(readFileSync(path.join(base, 'victim'), 'utf8'), 'do not touch\n');
  t.match(readFileSync(paths.listingCache, 'utf8'), /^maildird-listing 1\n/, 'replaced the link, not its target');
});

t.test('a failed write is logged and harmless', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  const fs = new FsRecorder();
  fs.fail({ op: 'rename', code: 'ENOSPC' });
  const { logger, records } = captureLogger('warn');
  const cache = new ListingCache({ fs, logger });
  const listing = await open(cache, paths, fs, later);
  t.equal(listing.entries.length, 1);
  t.match(records, [{ msg: 'listing cache not written' }]);
  t.notOk(existsSync(paths.listingCache));
  t.notOk(existsSync(`${paths.listingCache}.${process.pid}.tmp`), 'temporary file removed');
});

t.test('size corrections reach the next session', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a,S=2,W=999:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  const cache = new ListingCache({ fs: nodeFs });
  const first = await open(cache, paths, nodeFs, later);
  const entry = first.entries[0];
  t.equal(entry?.size, 999, 'W= trusted for the listing');
  cache.correctSize(paths, entry?.path ?? '', 3);
  t.equal(first.entries[0]?.size, 999, 'a snapshot already handed out does not change');
  await cache.flush(paths);
  const next = await open(new ListingCache({ fs: nodeFs }), paths, nodeFs, later);
  t.equal(next.entries[0]?.size, 3);
  // The correction survives a rescan of the directory.
  writeFileSync(path.join(paths.cur, '1700000001.M1P1Q1.b:2,S'), 'b\n');
  const rescanned = await open(cache, paths, nodeFs, later);
  t.same(
    rescanned.entries.map((e) => e.size),
    [3, 3],
  );
});

t.test('memory is bounded', async (t) => {
  const base = t.testdir();
  const cache = new ListingCache({ fs: nodeFs, maxMemoryEntries: 5, isPersistent: false });
  const users = ['u1', 'u2', 'u3'].map((u) => {
    const cur: Record<string, string> = {};
    for (let i = 0; i < 3; i++) cur[`${1700000000 + i}.M1P1Q${i}.h,S=2,W=3:2,S`] = 'x\n';
    return maildirPaths(makeMaildir(path.join(base, u), { cur }));
  });
  for (const p of users) await open(cache, p, nodeFs, later);
  t.equal(cache.memoryEntries, 3, 'older listings dropped');
  t.equal(await cache.load(users[0] as MaildirPaths), undefined, 'u1 evicted, and no file to fall back to');
  t.ok(await cache.load(users[2] as MaildirPaths));
  cache.forget(users[2] as MaildirPaths);
  t.equal(cache.memoryEntries, 0);
});

t.test('saves run in the background, one at a time, the newest wins; flush and drain wait', async (t) => {
  const dir = makeMaildir(t.testdir(), { cur: { '1700000000.M1P1Q1.a:2,S': 'a\n' } });
  const paths = maildirPaths(dir);
  const cache = new ListingCache({ fs: nodeFs });
  const first = (await scanMaildrop(paths, 'maildir', { fs: nodeFs, now: later })).listing;
  writeFileSync(path.join(paths.new, '1700000001.M1P1Q1.b'), 'b\n');
  const second = (await scanMaildrop(paths, 'maildir', { fs: nodeFs, previous: first, now: later })).listing;
  const a = cache.save(paths, first);
  const b = cache.save(paths, second);
  t.notOk(existsSync(paths.listingCache), 'nothing written before the next turn of the event loop');
  t.equal(await cache.load(paths), second, 'memory has the newest at once');
  await cache.flush(paths);
  await Promise.all([a, b]);
  t.same(decodeListing(readFileSync(paths.listingCache, 'utf8'), paths), second, 'the file has the newest');
  await cache.drain();
});

t.test('a big listing is encoded in slices, yielding between them, to the same text', async (t) => {
  const paths = maildirPaths(t.testdir());
  const count = 2 * ENCODE_SLICE_ENTRIES + 7;
  const entries: ScanEntry[] = [];
  for (let i = 0; i < count; i++) {
    const base = `${1700000000 + i}.M${i}P1Q${i}.h`;
    const name = i % 3 === 0 ? `${base},S=9,W=10:2,S` : `${base}:2,S`;
    entries.push({
      path: `${paths.cur}/${name}`,
      dir: 'cur',
      name,
      base,
      uidl: base,
      baseUidl: base,
      size: 10 + (i % 5),
      time: (1700000000 + i) * 1e6,
      ...(i % 3 === 0 ? { storedSize: 9 } : { mtimeMs: 1.5e12 + i }),
    });
  }
  const stamp = { mtimeMs: 1.7e12, ctimeMs: 1.7e12, ino: 42, isTrusted: true };
  const listing: Listing = { form: 'maildir', stamps: { cur: stamp, new: stamp }, entries };
  let turns = 0;
  const text = await encodeListingInSlices(listing, async () => {
    turns++;
  });
  t.equal(turns, 2, 'one yield between each two slices');
  t.equal(text, encodeListing(listing), 'the same text as the one-shot encoder');
  t.same(decodeListing(text, paths), listing, 'and it decodes back');
  const empty: Listing = { form: 'maildir', stamps: {}, entries: [] };
  t.equal(await encodeListingInSlices(empty), encodeListing(empty), 'an empty listing too');
});
