import { mkdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { createMaildir } from '../../../src/storage/maildir/create-maildir.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

t.test('missing parents (0711), the folder and cur/ new/ tmp/ (0700), each made durable', async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'example.org', 'alice');
  const fs = new FsRecorder();
  let fsyncs = 0;
  t.equal(await createMaildir({ fs, dir, root, onDirFsync: () => (fsyncs += 1) }), true);
  t.equal(await modeOf(path.join(root, 'example.org')), 0o711);
  for (const p of [dir, path.join(dir, 'cur'), path.join(dir, 'new'), path.join(dir, 'tmp')]) t.equal(await modeOf(p), 0o700, p);
  const synced = fs.calls.filter((c) => c.op === 'fsyncDir').map((c) => path.relative(root, c.path)).sort();
  // root: holds the new domain folder; example.org: holds alice; alice: holds cur/ new/ tmp/.
  t.same(synced, ['', 'example.org', 'example.org/alice']);
  t.equal(fsyncs, 3);
  t.notOk(fs.calls.some((c) => c.op === 'mkdir' && c.path === root), 'the root is never created');
});

t.test('an existing Maildir: nothing created, folder and parent still fsynced (another process may not have yet)', async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'bob');
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(dir, sub), { recursive: true });
  const fs = new FsRecorder();
  t.equal(await createMaildir({ fs, dir, root }), false);
  t.same(fs.calls.filter((c) => c.op === 'fsyncDir').map((c) => path.relative(root, c.path)).sort(), ['', 'bob']);
});

t.test('a Maildir that lost tmp/ gets it back', async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'carol');
  for (const sub of ['cur', 'new']) await mkdir(path.join(dir, sub), { recursive: true });
  t.equal(await createMaildir({ fs: new FsRecorder(), dir, root }), true);
  t.ok((await stat(path.join(dir, 'tmp'))).isDirectory());
});

t.test('two creators racing for one folder both succeed (EEXIST is fine)', async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'd', 'dave');
  const results = await Promise.all([createMaildir({ fs: new FsRecorder(), dir, root }), createMaildir({ fs: new FsRecorder(), dir, root })]);
  t.ok(results.includes(true));
  t.ok((await stat(path.join(dir, 'new'))).isDirectory());
});

t.test('a failing mkdir is thrown, with its errno', async (t) => {
  const root = t.testdir();
  const fs = new FsRecorder();
  fs.fail({ op: 'mkdir', path: /erin$/, code: 'EACCES' });
  await t.rejects(createMaildir({ fs, dir: path.join(root, 'erin'), root }), { code: 'EACCES' });
});
