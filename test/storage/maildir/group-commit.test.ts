import t from 'tap';
import { join } from 'node:path';
import { GroupCommit } from '../../../src/storage/maildir/group-commit.js';
import { FsRecorder, gate } from '../../helpers/fs-recorder.js';

t.test('a lone sync fsyncs the directory at once', async (t) => {
  const dir = t.testdir({ new: {} });
  const fs = new FsRecorder();
  let counted = 0;
  const commit = new GroupCommit(fs, () => counted++);
  await commit.sync(join(dir, 'new'));
  t.equal(fs.ops('fsyncDir').length, 1);
  t.equal(counted, 1);
  await commit.sync(join(dir, 'new'));
  t.equal(fs.ops('fsyncDir').length, 2, 'a later sync never reuses a finished fsync');
  t.same(commit.stats(), { fsyncs: 2, requests: 2 });
});

t.test('one in flight: callers arriving while an fsync runs share the next one, which starts after they called', async (t) => {
  const dir = join(t.testdir({ new: {} }), 'new');
  const fs = new FsRecorder();
  const hold = gate();
  fs.fail({ op: 'fsyncDir', wait: hold.promise, times: 1 });
  const commit = new GroupCommit(fs, undefined, 1);
  const first = commit.sync(dir);
  const joinedAt: number[] = [];
  const later: Promise<void>[] = [];
  for (let i = 0; i < 10; i++) {
    joinedAt.push(fs.mark(`join ${i}`).seq);
    later.push(commit.sync(dir).then(() => void fs.mark(`done ${i}`)));
  }
  t.equal(fs.ops('fsyncDir').length, 1, 'no second fsync while the first runs');
  hold.open();
  await first;
  await Promise.all(later);
  const fsyncs = fs.ops('fsyncDir');
  t.equal(fsyncs.length, 2, 'ten callers, one shared fsync');
  const second = fsyncs[1]!;
  t.ok(joinedAt.every((seq) => seq < second.seq), 'the shared fsync started after every caller joined');
  for (const done of fs.ops('mark', /^done/)) t.ok(done.seq > second.end!, `${done.path} after the fsync ended`);
});

t.test('two in flight (the default): the second caller starts its own fsync at once; later ones share the next, started after they joined', async (t) => {
  const dir = join(t.testdir({ new: {} }), 'new');
  const fs = new FsRecorder();
  const hold = gate();
  fs.fail({ op: 'fsyncDir', wait: hold.promise, times: 2 });
  const commit = new GroupCommit(fs);
  const first = commit.sync(dir);
  const second = commit.sync(dir);
  t.equal(fs.ops('fsyncDir').length, 2, 'the second did not wait for the first');
  const joinedAt: number[] = [];
  const later: Promise<void>[] = [];
  for (let i = 0; i < 10; i++) {
    joinedAt.push(fs.mark(`join ${i}`).seq);
    later.push(commit.sync(dir).then(() => void fs.mark(`done ${i}`)));
  }
  t.equal(fs.ops('fsyncDir').length, 2, 'never more than two at a time');
  hold.open();
  await Promise.all([first, second, ...later]);
  const fsyncs = fs.ops('fsyncDir');
  t.equal(fsyncs.length, 3, 'ten callers, one shared fsync');
  const third = fsyncs[2]!;
  t.ok(joinedAt.every((seq) => seq < third.seq), 'the shared fsync started after every caller joined');
  for (const done of fs.ops('mark', /^done/)) t.ok(done.seq > third.end!, `${done.path} after the fsync ended`);
  t.same(commit.stats(), { fsyncs: 3, requests: 12 });
});

t.test('a failed fsync rejects its own batch only', async (t) => {
  const dir = join(t.testdir({ new: {} }), 'new');
  const fs = new FsRecorder();
  const hold = gate();
  fs.fail({ op: 'fsyncDir', wait: hold.promise, code: 'EIO', times: 1 });
  const commit = new GroupCommit(fs);
  const first = commit.sync(dir);
  const second = commit.sync(dir);
  hold.open();
  await t.rejects(first, { code: 'EIO' });
  await t.resolves(second, 'the next batch runs its own fsync');
  t.equal(fs.ops('fsyncDir').length, 2);
});

t.test('different directories fsync independently', async (t) => {
  const root = t.testdir({ a: { new: {} }, b: { new: {} } });
  const fs = new FsRecorder();
  const hold = gate();
  fs.fail({ op: 'fsyncDir', path: /\/a\/new$/, wait: hold.promise, times: 1 });
  const commit = new GroupCommit(fs);
  const a = commit.sync(join(root, 'a', 'new'));
  await commit.sync(join(root, 'b', 'new'));
  t.equal(fs.ops('fsyncDir').length, 2, 'b did not wait for a');
  hold.open();
  await a;
});

t.test('a directory that cannot be fsynced rejects (ENOENT)', async (t) => {
  const root = t.testdir({});
  const commit = new GroupCommit(new FsRecorder());
  await t.rejects(commit.sync(join(root, 'missing')), { code: 'ENOENT' });
});
