import t from 'tap';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { parsePasswdFile } from '../../src/auth/passwd-file.js';
import { verifyPassword } from '../../src/auth/password.js';
import { UserDatabase } from '../../src/auth/user-db.js';
import {
  addUser,
  deleteUser,
  listUsers,
  readUsersFile,
  setPassword,
  writeFileAtomically,
} from '../../src/auth/users-file-editor.js';

/** Most tests use a fast scheme; one checks the ARGON2ID default. */
const fast = { scheme: 'SSHA256' } as const;

const HEADER = '# maildird users\r\n\r\nalice:{PLAIN}a:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\r\n';

function passwordOf(file: string, name: string): string {
  const entry = parsePasswdFile(readFileSync(file)).entries.find((e) => e.name === name);
  return entry?.password ?? '';
}

t.test('addUser creates the file 0600 with an ARGON2ID line by default', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'passwd');
  await addUser(file, 'alice', 'n3w secret');
  t.equal(statSync(file).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  t.match(text, /^alice:\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=3,p=1\$[^\n]+\n$/);
  t.ok(await verifyPassword(passwordOf(file, 'alice'), 'n3w secret'));
  t.same(readdirSync(dir), ['passwd'], 'no temp file left');
});

t.test('addUser keeps every other byte: comments, blank lines, CRLF, broken and non-UTF-8 lines', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'passwd');
  const before = Buffer.concat([Buffer.from(HEADER), Buffer.from('broken line without colon\r\nlatin1-'), Buffer.from([0xe9]), Buffer.from(':{PLAIN}x\r\n')]);
  writeFileSync(file, before);
  await addUser(file, 'bob', 'pw', { ...fast, uid: 1001, gid: 1001, home: '/home/bob', quotaBytes: 100 * 1024 * 1024, quotaMessages: 500 });
  const after = readFileSync(file);
  t.same(after.subarray(0, before.length), before, 'old bytes unchanged');
  const added = after.subarray(before.length).toString('utf8');
  t.match(added, /^bob:\{SSHA256\}[^:]+:1001:1001::\/home\/bob::userdb_quota_rule=\*:storage=100M userdb_quota_rule2=\*:messages=500\r\n$/, 'CRLF like the file');
  const db = UserDatabase.fromEntries(parsePasswdFile(after.subarray(before.length)).entries);
  t.same(db.lookup('bob'), { name: 'bob', home: '/home/bob', uid: 1001, gid: 1001, quotaBytes: 100 * 1024 * 1024, quotaMessages: 500 });
  t.ok(await db.verifyPassword('bob', 'pw'));
});

t.test('addUser ends an unterminated last line first', async (t) => {
  const dir = t.testdir({ passwd: 'alice:{PLAIN}a' });
  const file = join(dir, 'passwd');
  await addUser(file, 'bob', 'b', { scheme: 'PLAIN' });
  t.equal(readFileSync(file, 'utf8'), 'alice:{PLAIN}a\nbob:{PLAIN}b\n');
});

t.test('addUser refuses duplicates, invalid names and empty passwords, writing nothing', async (t) => {
  const dir = t.testdir({ passwd: HEADER });
  const file = join(dir, 'passwd');
  await t.rejects(addUser(file, 'alice', 'x', fast), { code: 'duplicate-user', exitCode: 65, message: /alice already exists \(.* line 3\)/ });
  await addUser(file, 'Alice', 'x', fast);
  t.same(await listUsers(file), ['alice', 'Alice'], 'case matters unless asked');
  await t.rejects(addUser(file, 'ALICE', 'x', { ...fast, caseInsensitive: true }), { code: 'duplicate-user' });
  const snapshot = readFileSync(file);
  for (const name of ['', '.', '..', '../etc', 'a/b', 'a b', 'a:b', '.hidden', 'a\0b', 'a@b@c', 'x'.repeat(256)]) {
    await t.rejects(addUser(file, name, 'x', fast), { code: 'invalid-name', exitCode: 65 }, JSON.stringify(name));
  }
  await t.rejects(addUser(file, 'carol', '', fast), { code: 'invalid-field' });
  await t.rejects(addUser(file, 'carol', 'x', { scheme: 'NOPE' }), { code: 'invalid-field', message: /unknown password scheme/ });
  await t.rejects(addUser(file, 'carol', 'x', { ...fast, gecos: 'a:b' }), { code: 'invalid-field' });
  await t.rejects(addUser(file, 'carol', 'x', { ...fast, home: 'relative' }), { code: 'invalid-field', message: /absolute/ });
  t.same(readFileSync(file), snapshot, 'nothing written');
  t.same(readdirSync(dir), ['passwd']);
});

t.test('a duplicate on a broken line still counts', async (t) => {
  const dir = t.testdir({ passwd: 'bob:{PLAIN}x:notanumber\n' });
  await t.rejects(addUser(join(dir, 'passwd'), 'bob', 'x', fast), { code: 'duplicate-user' });
});

t.test('setPassword changes only the password field', async (t) => {
  const dir = t.testdir({ passwd: HEADER + 'bob:{PLAIN}b\n' });
  const file = join(dir, 'passwd');
  await setPassword(file, 'alice', 'changed', fast);
  const text = readFileSync(file, 'utf8');
  t.match(text, /^# maildird users\r\n\r\nalice:\{SSHA256\}[^:]+:1000:1000::\/home\/alice::userdb_quota_rule=\*:storage=1G\r\nbob:\{PLAIN\}b\n$/);
  t.ok(await verifyPassword(passwordOf(file, 'alice'), 'changed'));
  await setPassword(file, 'bob', 'new b', fast);
  t.ok(await verifyPassword(passwordOf(file, 'bob'), 'new b'), 'a two-field line');
  await t.rejects(setPassword(file, 'ALICE', 'x', fast), { code: 'no-such-user', exitCode: 67 });
  await setPassword(file, 'ALICE', 'again', { ...fast, caseInsensitive: true });
  t.ok(await verifyPassword(passwordOf(file, 'alice'), 'again'));
  await t.rejects(setPassword(join(dir, 'missing'), 'alice', 'x', fast), { code: 'unreadable', exitCode: 66 });
  await t.rejects(setPassword(file, 'alice', '', fast), { code: 'invalid-field' });
});

t.test('setPassword refuses to edit a line that does not parse', async (t) => {
  const dir = t.testdir({ passwd: 'bob:{PLAIN}x:notanumber\n' });
  await t.rejects(setPassword(join(dir, 'passwd'), 'bob', 'x', fast), {
    code: 'broken-file',
    message: /line 1 \(user bob\) does not parse: uid "notanumber"/,
  });
});

t.test('deleteUser removes the user\'s lines, broken ones too', async (t) => {
  const dir = t.testdir({ passwd: HEADER + 'bob:{PLAIN}b\nbob:{PLAIN}x:bad\ncarol:{PLAIN}c' });
  const file = join(dir, 'passwd');
  await deleteUser(file, 'bob');
  t.equal(readFileSync(file, 'utf8'), HEADER + 'carol:{PLAIN}c', 'no final line end added');
  await t.rejects(deleteUser(file, 'bob'), { code: 'no-such-user' });
  await t.rejects(deleteUser(file, 'ALICE'), { code: 'no-such-user' });
  await deleteUser(file, 'ALICE', { caseInsensitive: true });
  await deleteUser(file, 'carol');
  t.equal(readFileSync(file, 'utf8'), '# maildird users\r\n\r\n');
  await t.rejects(deleteUser(file, '../x'), { code: 'invalid-name' });
});

t.test('listUsers and readUsersFile', async (t) => {
  const dir = t.testdir({ passwd: HEADER + 'x y:{PLAIN}bad\nbob:{PLAIN}b\n' });
  const file = join(dir, 'passwd');
  t.same(await listUsers(file), ['alice', 'bob']);
  const parsed = await readUsersFile(file);
  t.match(parsed.errors, [{ line: 4, reason: /whitespace/ }]);
  await t.rejects(listUsers(join(dir, 'missing')), { code: 'unreadable' });
});

t.test('edits keep the file mode and go through a symlink to its target', async (t) => {
  const dir = t.testdir({ real: { passwd: 'alice:{PLAIN}a\n' } });
  const real = join(dir, 'real', 'passwd');
  chmodSync(real, 0o640);
  const link = join(dir, 'passwd');
  symlinkSync(real, link);
  await addUser(link, 'bob', 'b', { scheme: 'PLAIN' });
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
  t.equal(readFileSync(real, 'utf8'), 'alice:{PLAIN}a\nbob:{PLAIN}b\n');
  t.equal(statSync(real).mode & 0o777, 0o640, 'mode kept');
  t.same(readdirSync(join(dir, 'real')), ['passwd'], 'no temp file left');
});

t.test('writeFileAtomically: a failed rename leaves no temp file and a typed error', async (t) => {
  const dir = t.testdir();
  const target = join(dir, 'occupied');
  mkdirSync(target);
  writeFileSync(join(target, 'inside'), 'x');
  await t.rejects(writeFileAtomically(target, 'data'), { code: 'write-failed', exitCode: 74 });
  t.same(readdirSync(dir).sort(), ['occupied']);
  await writeFileAtomically(join(dir, 'fresh'), 'data');
  t.equal(readFileSync(join(dir, 'fresh'), 'utf8'), 'data');
  t.equal(statSync(join(dir, 'fresh')).mode & 0o777, 0o600);
});
