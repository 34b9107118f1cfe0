import t from 'tap';
import { existsSync, utimesSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanTmp, isFlatTmpName, TMP_MAX_AGE_MS } from '../../../src/storage/maildir/tmp-cleanup.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';
import { captureLog } from '../../helpers/log-capture.js';

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);
const HOUR = 3_600_000;

function age(file: string, hours: number): void {
  const when = new Date(NOW - hours * HOUR);
  utimesSync(file, when, when);
}

t.test('removes files older than 36 hours, keeps younger ones and folders', async (t) => {
  const dir = t.testdir({ tmp: { old: 'x', older: 'y', fresh: 'z', edge: 'e', sub: {} } });
  const tmp = join(dir, 'tmp');
  age(join(tmp, 'old'), 37);
  age(join(tmp, 'older'), 24 * 30);
  age(join(tmp, 'fresh'), 1);
  age(join(tmp, 'edge'), 36); // exactly 36 h: not older than the limit
  age(join(tmp, 'sub'), 100);
  const { logger, lines } = captureLog('debug');
  const removed = await cleanTmp(nodeFs, tmp, NOW, TMP_MAX_AGE_MS, logger);
  t.equal(removed, 2);
  t.notOk(existsSync(join(tmp, 'old')));
  t.notOk(existsSync(join(tmp, 'older')));
  t.ok(existsSync(join(tmp, 'fresh')));
  t.ok(existsSync(join(tmp, 'edge')));
  t.ok(existsSync(join(tmp, 'sub')), 'folders are not touched');
  const warned = lines.filter((l) => l.level === 40);
  t.equal(warned.length, 2, 'one warning per removed file');
  t.ok(warned.every((l) => typeof l.file === 'string' && String(l.file).startsWith(tmp)));
});

t.test('takes a Date as now and a custom age', async (t) => {
  const dir = t.testdir({ a: 'x' });
  age(join(dir, 'a'), 2);
  t.equal(await cleanTmp(nodeFs, dir, new Date(NOW), 3 * HOUR), 0);
  t.equal(await cleanTmp(nodeFs, dir, new Date(NOW), HOUR), 1);
});

t.test('a missing tmp folder is not an error', async (t) => {
  const dir = t.testdir({});
  t.equal(await cleanTmp(nodeFs, join(dir, 'nope'), NOW), 0);
});

t.test('a file that vanishes between readdir and unlink is skipped quietly', async (t) => {
  const dir = t.testdir({ a: 'x', b: 'y' });
  age(join(dir, 'a'), 40);
  age(join(dir, 'b'), 40);
  const fs = new FsRecorder();
  fs.fail({ op: 'lstat', path: /\/a$/, code: 'ENOENT' });
  fs.fail({ op: 'unlink', path: /\/b$/, code: 'ENOENT' });
  const { logger, lines } = captureLog('debug');
  t.equal(await cleanTmp(fs, dir, NOW, TMP_MAX_AGE_MS, logger), 0);
  t.equal(lines.length, 0, 'nothing logged for vanished files');
});

t.test('a file that cannot be removed is logged and the rest go on', async (t) => {
  const dir = t.testdir({ a: 'x', b: 'y' });
  age(join(dir, 'a'), 40);
  age(join(dir, 'b'), 40);
  const fs = new FsRecorder();
  fs.fail({ op: 'unlink', path: /\/a$/, code: 'EACCES' });
  const { logger, lines } = captureLog('debug');
  t.equal(await cleanTmp(fs, dir, NOW, TMP_MAX_AGE_MS, logger), 1);
  t.ok(existsSync(join(dir, 'a')));
  t.notOk(existsSync(join(dir, 'b')));
  t.equal(lines.filter((l) => l.msg === 'could not remove stale tmp file').length, 1);
});

t.test('an unreadable tmp folder throws a StorageError', async (t) => {
  const dir = t.testdir({ tmp: {} });
  const fs = new FsRecorder();
  fs.fail({ op: 'readdir', code: 'EIO' });
  await t.rejects(cleanTmp(fs, join(dir, 'tmp'), NOW), { name: 'StorageError', kind: 'temporary' });
});

t.test('flat folders: only .<unique>.tmp files are candidates', async (t) => {
  const dir = t.testdir({});
  mkdirSync(join(dir, 'f'));
  const names = ['.1.M1P1Q1.host.tmp', 'old-message.eml', '.keep', 'notes.tmp'];
  for (const name of names) {
    writeFileSync(join(dir, 'f', name), 'x');
    age(join(dir, 'f', name), 100);
  }
  t.equal(await cleanTmp(nodeFs, join(dir, 'f'), NOW, TMP_MAX_AGE_MS, undefined, { match: isFlatTmpName }), 1);
  t.notOk(existsSync(join(dir, 'f', names[0]!)));
  for (const name of names.slice(1)) t.ok(existsSync(join(dir, 'f', name)), `${name} kept`);
  t.notOk(isFlatTmpName('.tmp'));
  t.ok(isFlatTmpName('.a.tmp'));
});
