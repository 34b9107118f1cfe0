/** `maildird user add|passwd|del|list` through the built CLI, on a users file in a temporary folder. */
import t from 'tap';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { UserDatabase } from '../../../src/auth/user-db.js';
import { runCli } from '../../helpers/cli-run.js';

async function logsIn(file: string, name: string, password: string): Promise<boolean> {
  const db = await UserDatabase.load(file);
  return (await db.verifyPassword(name, password)) !== undefined;
}

t.test('add, passwd, list, del with passwords on stdin', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'passwd');

  const add = await runCli(['user', 'add', '--users', file, 'alice'], { input: 'first secret\n' });
  t.equal(add.code, 0, add.stderr);
  t.equal(add.stdout, `added alice to ${file}\n`);
  t.match(readFileSync(file, 'utf8'), /^alice:\{ARGON2ID\}\$argon2id\$/, 'new passwords get the default scheme');
  t.equal(statSync(file).mode & 0o777, 0o600, 'a new users file is private');
  t.ok(await logsIn(file, 'alice', 'first secret'));

  const bob = await runCli(['user', 'add', 'bob@example.org', '--users', file], { input: 'b0b\r\nignored second line\n' });
  t.equal(bob.code, 0, bob.stderr);

  const list = await runCli(['user', 'list', '--users', file]);
  t.equal(list.code, 0);
  t.equal(list.stdout, 'alice\nbob@example.org\n');

  const passwd = await runCli(['user', 'passwd', '--users', file, 'alice'], { input: 'second secret\n' });
  t.equal(passwd.code, 0, passwd.stderr);
  t.equal(passwd.stdout, `changed the password of alice in ${file}\n`);
  t.ok(await logsIn(file, 'alice', 'second secret'));
  t.notOk(await logsIn(file, 'alice', 'first secret'));
  t.ok(await logsIn(file, 'bob@example.org', 'b0b'), 'other lines untouched');

  const del = await runCli(['user', 'del', '--users', file, 'alice']);
  t.equal(del.code, 0, del.stderr);
  t.equal((await runCli(['user', 'list', '--users', file])).stdout, 'bob@example.org\n');
});

t.test('the users file comes from --users, MAILDIRD_USERS, or the config file', async (t) => {
  const dir = t.testdir({ 'maildird.json': JSON.stringify({ users: 'etc/users' }), etc: {} });
  const viaConfig = await runCli(['user', 'add', 'carol'], { cwd: dir, input: 'pw\n' });
  t.equal(viaConfig.code, 0, viaConfig.stderr);
  t.match(readFileSync(path.join(dir, 'etc', 'users'), 'utf8'), /^carol:/);
  const viaEnv = await runCli(['user', 'add', 'dave'], { cwd: dir, input: 'pw\n', env: { MAILDIRD_USERS: 'other' } });
  t.equal(viaEnv.code, 0, viaEnv.stderr);
  t.match(readFileSync(path.join(dir, 'other'), 'utf8'), /^dave:/);
});

t.test('names that could not be a folder are refused before any password is read', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'passwd');
  for (const name of ['..', '.hidden', 'a/b', 'a:b', 'a b', 'x\u0001y']) {
    const result = await runCli(['user', 'add', '--users', file, name], { input: 'pw\n' });
    t.equal(result.code, 65, JSON.stringify(name));
    t.match(result.stderr, /^maildird: invalid user name .+\n$/);
  }
  t.throws(() => statSync(file), { code: 'ENOENT' }, 'no file was written');
});

t.test('failures: duplicate, unknown user, empty or missing password, missing file', async (t) => {
  const dir = t.testdir({ passwd: 'alice:{PLAIN}x\n' });
  const file = path.join(dir, 'passwd');
  const duplicate = await runCli(['user', 'add', '--users', file, 'alice'], { input: 'pw\n' });
  t.equal(duplicate.code, 65);
  t.match(duplicate.stderr, /^maildird: user alice already exists/);
  const unknown = await runCli(['user', 'passwd', '--users', file, 'zed'], { input: 'pw\n' });
  t.equal(unknown.code, 67, 'EX_NOUSER');
  t.match(unknown.stderr, /^maildird: no user zed/);
  const unknownDel = await runCli(['user', 'del', '--users', file, 'zed']);
  t.equal(unknownDel.code, 67);
  const empty = await runCli(['user', 'add', '--users', file, 'bob'], { input: '\n' });
  t.equal(empty.code, 65);
  t.match(empty.stderr, /empty password/);
  const none = await runCli(['user', 'add', '--users', file, 'bob']);
  t.equal(none.code, 66);
  t.match(none.stderr, /no password on stdin/);
  const missing = await runCli(['user', 'list', '--users', path.join(dir, 'nope')]);
  t.equal(missing.code, 66);
  t.match(missing.stderr, /^maildird: cannot read the users file .*nope: ENOENT\n$/);
  t.equal(readFileSync(file, 'utf8'), 'alice:{PLAIN}x\n', 'the file is unchanged');
});
