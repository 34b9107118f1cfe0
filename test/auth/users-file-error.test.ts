import t from 'tap';
import { ConfigError } from '../../src/errors.js';
import { UsersFileError, describeLineErrors } from '../../src/auth/users-file-error.js';

t.test('a ConfigError with a code, an exit code and the bad lines', async (t) => {
  const e = new UsersFileError('no-such-user', 'no user bob', { lines: [] });
  t.ok(e instanceof ConfigError);
  t.equal(e.code, 'no-such-user');
  t.equal(e.exitCode, 67);
  t.equal(e.key, 'users');
  t.equal(new UsersFileError('unreadable', 'x').exitCode, 66);
  t.equal(new UsersFileError('write-failed', 'x').exitCode, 74);
  t.equal(new UsersFileError('broken-file', 'x', { lines: [{ line: 1, reason: 'r' }] }).lines.length, 1);
});

t.test('describes at most five lines', async (t) => {
  const lines = Array.from({ length: 7 }, (_, i) => ({ line: i + 1, reason: `bad ${i + 1}` }));
  t.equal(
    describeLineErrors('/etc/passwd', lines),
    '/etc/passwd: 7 bad lines: line 1: bad 1; line 2: bad 2; line 3: bad 3; line 4: bad 4; line 5: bad 5; and 2 more',
  );
  t.equal(describeLineErrors('f', [{ line: 3, reason: 'x' }]), 'f: 1 bad line: line 3: x');
});
