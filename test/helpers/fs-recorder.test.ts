/** The recorder others reuse must itself be right: order, faults, holds. */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsRecorder, gate } from './fs-recorder.js';

t.test('records calls in order with paths, including calls through handles', async (t) => {
  const dir = t.testdir({ a: 'x' });
  const fs = new FsRecorder();
  const h = await fs.open(join(dir, 'b'), 'wx+', 0o600);
  await h.write(Buffer.from('hello'));
  await fs.fsync(h);
  await h.close();
  await fs.rename(join(dir, 'b'), join(dir, 'c'));
  await fs.fsyncDir(dir);
  fs.mark('done');
  t.same(
    fs.calls.map((c) => [c.op, c.path.replace(dir, '~'), c.to?.replace(dir, '~')]),
    [
      ['open', '~/b', undefined],
      ['write', '~/b', undefined],
      ['fsync', '~/b', undefined],
      ['close', '~/b', undefined],
      ['rename', '~/b', '~/c'],
      ['fsyncDir', '~', undefined],
      ['mark', 'done', undefined],
    ],
  );
  t.ok(fs.calls.every((c, i) => i === 0 || c.seq > fs.calls[i - 1]!.end!), 'sequential calls do not overlap');
  t.equal(readFileSync(join(dir, 'c'), 'latin1'), 'hello', 'the real file system did the work');
  t.equal(fs.ops('rename', /\/c$/).length, 1, 'ops() matches the destination too');
});

t.test('faults: errno, skip, times, afterEffect', async (t) => {
  const dir = t.testdir({ a: '1', b: '2', c: '3' });
  const fs = new FsRecorder();
  fs.fail({ op: 'unlink', code: 'EIO', skip: 1, times: 1 });
  await fs.unlink(join(dir, 'a'));
  await t.rejects(fs.unlink(join(dir, 'b')), { code: 'EIO' });
  t.ok(existsSync(join(dir, 'b')), 'a failed call did nothing');
  await fs.unlink(join(dir, 'b'));
  t.same(fs.ops('unlink').map((c) => [c.error, c.injected]), [[undefined, undefined], ['EIO', true], [undefined, undefined]]);
  fs.fail({ op: 'rename', code: 'ENOENT', afterEffect: true });
  await t.rejects(fs.rename(join(dir, 'c'), join(dir, 'd')), { code: 'ENOENT' });
  t.ok(existsSync(join(dir, 'd')), 'afterEffect: it happened although it failed');
  fs.clearFaults();
  await t.rejects(fs.stat(join(dir, 'nope')), { code: 'ENOENT' });
  t.equal(fs.ops('stat')[0]?.error, 'ENOENT', 'real errors are recorded too');
});

t.test('holds: a call waits for its gate', async (t) => {
  const dir = t.testdir({});
  const fs = new FsRecorder();
  const hold = gate();
  const remove = fs.fail({ op: 'fsyncDir', wait: hold.promise });
  const first = fs.fsyncDir(dir);
  fs.mark('while held');
  hold.open();
  await first;
  t.ok(fs.ops('fsyncDir')[0]!.end! > fs.ops('mark')[0]!.seq, 'ended after the gate opened');
  remove();
  await fs.fsyncDir(dir);
  t.equal(fs.ops('fsyncDir').length, 2);
});
