import t from 'tap';
import { StorageError, storageErrorFrom, isStorageError, ConfigError } from '../src/errors.js';

t.test('storageErrorFrom maps errno codes to kinds', async (t) => {
  const errno = (code: string) => Object.assign(new Error(code), { code });
  t.equal(storageErrorFrom(errno('ENOSPC'), 'write').kind, 'no-space');
  t.equal(storageErrorFrom(errno('EDQUOT'), 'write').kind, 'no-space');
  t.equal(storageErrorFrom(errno('ENOENT'), 'open').kind, 'not-found');
  t.equal(storageErrorFrom(errno('EACCES'), 'open').kind, 'permanent');
  t.equal(storageErrorFrom(errno('EROFS'), 'open').kind, 'permanent');
  t.equal(storageErrorFrom(errno('EIO'), 'read').kind, 'temporary');
  const e = storageErrorFrom(errno('EIO'), 'read x');
  t.match(e.message, /^read x: EIO$/);
  t.ok(e.cause instanceof Error, 'keeps the cause');
});

t.test('a StorageError passes through unchanged', async (t) => {
  const original = new StorageError('quota', 'over quota');
  t.equal(storageErrorFrom(original, 'x'), original);
  t.ok(isStorageError(original, 'quota'));
  t.notOk(isStorageError(original, 'in-use'));
  t.notOk(isStorageError(new Error('x')));
});

t.test('ConfigError carries the key and EX_CONFIG by default', async (t) => {
  const e = new ConfigError('bad port', { key: 'pop3' });
  t.equal(e.key, 'pop3');
  t.equal(e.exitCode, 78);
});
