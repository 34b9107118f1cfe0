import t from 'tap';
import { readFileSync, writeFileSync, existsSync, utimesSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkQuota,
  exceeds,
  formatQuotaHeader,
  isUnlimited,
  MAILDIRSIZE_MAX_BYTES,
  parseMaildirsize,
  quotaLimitsFor,
  quotaUsage,
  recordDelta,
  type QuotaContext,
} from '../../../src/storage/maildir/quota.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';

const MIN = 60_000;

function ctx(dir: string, over: Partial<QuotaContext> = {}): QuotaContext {
  return { fs: nodeFs, dir, form: 'maildir', limits: { bytes: 1000, messages: 0 }, ...over };
}

const read = (dir: string) => readFileSync(join(dir, 'maildirsize'), 'latin1');

t.test('limits come from the user, else the defaults; 0 is unlimited', async (t) => {
  t.same(quotaLimitsFor({ name: 'a' }, 500, 7), { bytes: 500, messages: 7 });
  t.same(quotaLimitsFor({ name: 'a', quotaBytes: 0 }, 500), { bytes: 0, messages: 0 });
  t.same(quotaLimitsFor({ name: 'a', quotaBytes: 10, quotaMessages: 2 }, 500), { bytes: 10, messages: 2 });
  t.same(quotaLimitsFor({ name: 'a', quotaBytes: -5 }), { bytes: 0, messages: 0 }, 'nonsense is unlimited');
  t.ok(isUnlimited({ bytes: 0, messages: 0 }));
  t.notOk(isUnlimited({ bytes: 0, messages: 1 }));
  t.ok(exceeds({ bytes: 900, messages: 0 }, { bytes: 1000, messages: 0 }, { bytes: 101, messages: 1 }));
  t.notOk(exceeds({ bytes: 900, messages: 0 }, { bytes: 1000, messages: 0 }, { bytes: 100, messages: 1 }), 'exactly full fits');
  t.ok(exceeds({ bytes: 0, messages: 3 }, { bytes: 0, messages: 3 }, { bytes: 1, messages: 1 }));
});

t.test('maildirsize header and lines', async (t) => {
  t.equal(formatQuotaHeader({ bytes: 1000, messages: 20 }), '1000S,20C');
  t.equal(formatQuotaHeader({ bytes: 1000, messages: 0 }), '1000S');
  t.equal(formatQuotaHeader({ bytes: 0, messages: 5 }), '5C');
  t.same(parseMaildirsize('1000S,20C\n300 3\n12 1\n-12 -1\n'), {
    limits: { bytes: 1000, messages: 20 },
    usage: { bytes: 300, messages: 3 },
    lines: 3,
  });
  t.same(parseMaildirsize('5C,1000S,7X\n  1 1  \n')?.limits, { bytes: 1000, messages: 5 }, 'unknown letters ignored');
  t.equal(parseMaildirsize(''), undefined);
  t.equal(parseMaildirsize('1000S\nabc\n'), undefined);
  t.equal(parseMaildirsize('1000Q,\n'), undefined);
  t.equal(parseMaildirsize('1000S\n1 2 3\n'), undefined);
});

t.test('a missing maildirsize is calculated from the folder: S= in names, stat otherwise, Trash not counted', async (t) => {
  const dir = t.testdir({
    cur: { '1.M1P1Q1.h,S=100,W=104:2,S': 'x'.repeat(7), 'noname-size:2,': 'y'.repeat(50), '.hidden': 'zzz' },
    new: { '2.M1P1Q2.h,S=20': 'x' },
    tmp: { 'inflight': 'x'.repeat(999) },
    '.Drafts': { cur: { '3.M1P1Q3.h,S=5:2,D': 'x' }, new: {}, tmp: {} },
    '.Trash': { cur: { '4.M1P1Q4.h,S=400:2,S': 'x' }, new: {}, tmp: {} },
  });
  const usage = await quotaUsage(ctx(dir));
  t.same(usage, { bytes: 175, messages: 4 });
  t.equal(read(dir), '1000S\n175 4\n');
  t.equal(statSync(join(dir, 'maildirsize')).mode & 0o777, 0o600);
  const withTrash = await quotaUsage(ctx(dir, { countTrash: true, limits: { bytes: 2000, messages: 0 } }));
  t.same(withTrash, { bytes: 575, messages: 5 }, 'countTrash counts .Trash (and the changed limit forces a rescan)');
  t.equal(read(dir), '2000S\n575 5\n');
});

t.test('a flat folder counts its .eml files', async (t) => {
  const dir = t.testdir({ 'a.eml': 'x'.repeat(10), 'b.eml': 'y'.repeat(5), '.c.tmp': 'zz', notes: 'n', '.Trash': { 'd.eml': 'x' } });
  t.same(await quotaUsage(ctx(dir, { form: 'flat' })), { bytes: 15, messages: 2 });
  t.equal(read(dir), '1000S\n15 2\n');
});

t.test('the file is trusted while small, fresh and within quota', async (t) => {
  const dir = t.testdir({ cur: {}, new: {}, tmp: {}, maildirsize: '1000S\n300 3\n10 1\n' });
  const fs = new FsRecorder();
  t.same(await quotaUsage(ctx(dir, { fs })), { bytes: 310, messages: 4 });
  t.equal(fs.ops('readdir').length, 0, 'no scan');
  t.equal(read(dir), '1000S\n300 3\n10 1\n', 'unchanged');
});

t.test('recalculated when it has grown to 5120 bytes', async (t) => {
  const big = '1000S\n0 0\n' + '1 0\n'.repeat(Math.ceil(MAILDIRSIZE_MAX_BYTES / 4));
  const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=42:2,S': 'x' }, new: {}, tmp: {}, maildirsize: big });
  t.same(await quotaUsage(ctx(dir)), { bytes: 42, messages: 1 });
  t.equal(read(dir), '1000S\n42 1\n');
});

t.test('recalculated when malformed, negative, or written for other limits', async (t) => {
  for (const bad of ['garbage\n', '1000S\n5 1\nxx\n', '1000S\n-50 -1\n', '999S\n5 1\n']) {
    const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=42:2,S': 'x' }, new: {}, tmp: {}, maildirsize: bad });
    t.same(await quotaUsage(ctx(dir)), { bytes: 42, messages: 1 }, JSON.stringify(bad));
    t.equal(read(dir), '1000S\n42 1\n');
  }
});

t.test('over quota: a fresh single-line file is trusted, an old one or one with deltas is recalculated', async (t) => {
  const now = Date.now();
  const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=42:2,S': 'x' }, new: {}, tmp: {}, maildirsize: '1000S\n990 1\n' });
  const file = join(dir, 'maildirsize');
  const adding = { bytes: 100, messages: 1 };
  t.same(await quotaUsage(ctx(dir, { now: () => now }), adding), { bytes: 990, messages: 1 }, 'fresh: trusted');
  await t.rejects(checkQuota(ctx(dir, { now: () => now }), adding), { name: 'StorageError', kind: 'quota' });
  const old = new Date(now - 16 * MIN);
  utimesSync(file, old, old);
  t.same(await quotaUsage(ctx(dir, { now: () => now }), adding), { bytes: 42, messages: 1 }, 'older than 15 min');
  t.equal(read(dir), '1000S\n42 1\n');
  writeFileSync(file, '1000S\n500 1\n490 1\n');
  await t.resolves(checkQuota(ctx(dir, { now: () => now }), adding), 'deltas: recalculated, then it fits');
  t.equal(read(dir), '1000S\n42 1\n');
});

t.test('message-count quota', async (t) => {
  const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=1:2,S': 'x', '2.M1P1Q2.h,S=1:2,S': 'x' }, new: {}, tmp: {} });
  const c = ctx(dir, { limits: { bytes: 0, messages: 2 } });
  await t.rejects(checkQuota(c, { bytes: 1, messages: 1 }), { name: 'StorageError', kind: 'quota' });
  t.equal(read(dir), '2C\n2 2\n');
  await t.resolves(checkQuota(ctx(dir, { limits: { bytes: 0, messages: 3 } }), { bytes: 1, messages: 1 }));
});

t.test('unlimited users cost no file access', async (t) => {
  const dir = t.testdir({ cur: {}, new: {}, tmp: {} });
  const fs = new FsRecorder();
  await checkQuota(ctx(dir, { fs, limits: { bytes: 0, messages: 0 } }), { bytes: 1e12, messages: 1 });
  t.equal(fs.calls.length, 0);
});

t.test('recordDelta appends lines (negative for removals) and never creates the file', async (t) => {
  const root = t.testdir({ a: { maildirsize: '1000S\n100 2\n' }, empty: {} });
  const dir = join(root, 'a');
  t.equal(await recordDelta(nodeFs, dir, 50, 1), true);
  t.equal(await recordDelta(nodeFs, dir, -30, -1), true);
  t.equal(await recordDelta(nodeFs, dir, 0, 0), false, 'nothing to record');
  t.equal(read(dir), '1000S\n100 2\n50 1\n-30 -1\n');
  t.same(parseMaildirsize(read(dir))?.usage, { bytes: 120, messages: 2 });
  const empty = join(root, 'empty');
  t.equal(await recordDelta(nodeFs, empty, 5, 1), false);
  t.notOk(existsSync(join(empty, 'maildirsize')));
  await t.rejects(recordDelta(nodeFs, dir, 1.5, 1), { name: 'StorageError', kind: 'permanent' });
  const fs = new FsRecorder();
  fs.fail({ op: 'write', code: 'ENOSPC' });
  await t.rejects(recordDelta(fs, dir, 1, 1), { name: 'StorageError', kind: 'no-space' });
  t.equal(fs.ops('close').length, 1, 'the handle is closed after a failed append');
});

t.test('concurrent recalculations in one process share one scan', async (t) => {
  const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=42:2,S': 'x' }, new: {}, tmp: {} });
  const fs = new FsRecorder();
  const results = await Promise.all(Array.from({ length: 10 }, () => quotaUsage(ctx(dir, { fs }))));
  for (const r of results) t.same(r, { bytes: 42, messages: 1 });
  t.equal(fs.ops('rename').length, 1, 'one rewrite');
});

t.test('a directory that changes during the scan discards the new file', async (t) => {
  const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=42:2,S': 'x' }, new: {}, tmp: {} });
  const fs = new FsRecorder();
  // Simulate a delivery landing in new/ while the scan runs: after the
  // rewrite, before the final check.
  let isDone = false;
  const inner = fs.rename.bind(fs);
  fs.rename = async (from: string, to: string) => {
    await inner(from, to);
    if (!isDone && to.endsWith('maildirsize')) {
      isDone = true;
      writeFileSync(join(dir, 'new', '9.M1P1Q9.h,S=7'), 'x');
    }
  };
  t.same(await quotaUsage(ctx(dir, { fs })), { bytes: 42, messages: 1 }, 'the scanned figure is returned');
  t.notOk(existsSync(join(dir, 'maildirsize')), 'but not kept: the next check rescans');
  t.same(await quotaUsage(ctx(dir)), { bytes: 49, messages: 2 });
});

t.test('a maildirsize that cannot be written still gives the usage', async (t) => {
  const dir = t.testdir({ cur: { '1.M1P1Q1.h,S=42:2,S': 'x' }, new: {}, tmp: {} });
  const fs = new FsRecorder();
  fs.fail({ op: 'writeFile', code: 'ENOSPC' });
  t.same(await quotaUsage(ctx(dir, { fs })), { bytes: 42, messages: 1 });
  t.notOk(existsSync(join(dir, 'maildirsize')));
});
