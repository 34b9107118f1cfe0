import t from 'tap';
import { describeFailure, UsageError } from '../../src/cli/failure.js';
import { ConfigError, StorageError } from '../../src/errors.js';

t.test('each error becomes one line and a sysexits code', async (t) => {
  t.same(describeFailure(new UsageError('Unknown argument: x')), { message: 'Unknown argument: x', exitCode: 64 });
  t.same(describeFailure(new ConfigError('bad\nsecond line', { exitCode: 66 })), { message: 'bad', exitCode: 66 });
  t.same(describeFailure(new ConfigError('bad port')), { message: 'bad port', exitCode: 78 });
  t.equal(describeFailure(new StorageError('not-found', 'gone')).exitCode, 66);
  t.equal(describeFailure(new StorageError('invalid-name', 'x')).exitCode, 65);
  t.equal(describeFailure(new StorageError('in-use', 'x')).exitCode, 75);
  t.equal(describeFailure(new StorageError('permanent', 'x')).exitCode, 74);
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: 'ENOENT' });
  t.same(describeFailure(enoent), { message: "ENOENT: no such file or directory, open '/x'", exitCode: 66 });
  t.equal(describeFailure(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })).exitCode, 74);
  const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
  t.same(describeFailure(bug), { message: "unexpected error: Cannot read properties of undefined (reading 'x')", exitCode: 70 });
  t.same(describeFailure('text'), { message: 'unexpected error: text', exitCode: 70 });
});
