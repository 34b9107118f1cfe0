import t from 'tap';
import { createHash, createHmac } from 'node:crypto';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserDatabase, type ReloadEvent } from '../../src/auth/user-db.js';
import { UsersFileError } from '../../src/auth/users-file-error.js';
import { captureLog } from '../helpers/log-capture.js';

const FIXTURES = new URL('../../fixtures/users/', import.meta.url);
const fixturePath = (name: string) => new URL(name, FIXTURES).pathname;
/** A cheap dummy so tests of unknown users do not pay for Argon2 at 64 MiB each time. */
const dummyHash = '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE';

function nextReload(db: UserDatabase): Promise<ReloadEvent> {
  return new Promise((resolve) => {
    const off = db.onReload((event) => {
      off();
      resolve(event);
    });
  });
}

t.test('loads a Dovecot file and verifies each scheme', async (t) => {
  const db = await UserDatabase.load(fixturePath('dovecot.passwd'), { localDomains: ['example.org'], dummyHash });
  t.equal(db.size, 8);
  t.same(db.lookup('alice'), {
    name: 'alice',
    home: '/home/alice',
    uid: 1000,
    gid: 1000,
    quotaBytes: 100 * 1024 * 1024,
    quotaMessages: 5000,
  });
  t.same(db.lookup('carol@example.org'), { name: 'carol@example.org', quotaBytes: 1024 ** 3 });
  t.same(db.lookup('erin'), { name: 'erin', home: '/srv/mail/erin' });
  for (const name of ['alice', 'bob', 'carol@example.org', 'dave', 'grace', 'heidi']) {
    t.equal((await db.verifyPassword(name, 'secret'))?.name, name, `${name} logs in`);
    t.equal(await db.verifyPassword(name, 'Secret'), undefined, `${name} wrong password`);
  }
  t.equal(await db.verifyPassword('erin', 'secret'), undefined, 'nologin');
  t.equal(await db.verifyPassword('frank', ''), undefined, 'no password, empty attempt');
  t.equal(await db.verifyPassword('frank', 'x'), undefined, 'no password');
  t.equal(await db.verifyPassword('bob', ''), undefined, 'an empty password never logs in');
  t.match(db.stats(), { users: 8, accepted: 6 });
  t.ok(Object.isFrozen(db.lookup('alice')));
});

t.test('the load() options form the CLI uses', async (t) => {
  const db = await UserDatabase.load({ file: fixturePath('dovecot.passwd'), domains: ['example.org'], caseInsensitive: true });
  t.equal(db.lookup('CAROL')?.name, 'carol@example.org');
  t.equal(db.path, fixturePath('dovecot.passwd'));
});

t.test('lookup rules', async (t) => {
  const db = UserDatabase.fromEntries(
    [
      { name: 'bob', password: '{PLAIN}b' },
      { name: 'carol@example.org', password: '{PLAIN}c' },
      { name: 'carol@example.net', password: '{PLAIN}c2' },
      { name: 'Dan', password: '{PLAIN}d' },
    ],
    { localDomains: ['Example.org', 'example.net'], dummyHash },
  );
  t.equal(db.lookup('bob')?.name, 'bob', 'exact');
  t.equal(db.lookup('bob@example.org')?.name, 'bob', 'bare user in a local domain');
  t.equal(db.lookup('bob@EXAMPLE.net')?.name, 'bob', 'domains ignore case');
  t.equal(db.lookup('bob@other.org'), undefined, 'not a local domain');
  t.equal(db.lookup('Bob'), undefined, 'case matters by default');
  t.equal(db.lookup('carol')?.name, 'carol@example.org', 'bare login: the first local domain only');
  t.equal(db.lookup('carol@example.net')?.name, 'carol@example.net');
  t.equal(db.lookup('carol@EXAMPLE.ORG')?.name, 'carol@example.org');
  t.equal(db.lookup('Dan')?.name, 'Dan');
  t.equal(db.lookup('dan'), undefined);
  for (const odd of ['', '.', '..', '../bob', 'bob/..', 'bob\0', 'bob ', ' bob', 'b:ob', 'x'.repeat(300), 'a@b@c', 'bob@', '@example.org']) {
    t.equal(db.lookup(odd), undefined, JSON.stringify(odd));
  }
  t.equal(db.lookup(undefined as unknown as string), undefined, 'not even a string');

  const other = UserDatabase.fromEntries([{ name: 'carol@example.org', password: '{PLAIN}c' }], { localDomains: ['example.net', 'example.org'] });
  t.equal(other.lookup('carol'), undefined, 'a bare login never reaches a second domain');
  t.equal(UserDatabase.fromEntries([{ name: 'carol@example.org', password: 'x' }]).lookup('carol'), undefined, 'no local domains');
});

t.test('case-insensitive names return the canonical spelling', async (t) => {
  const db = UserDatabase.fromEntries(
    [
      { name: 'Alice', password: '{PLAIN}a' },
      { name: 'Carol@Example.org', password: '{PLAIN}c' },
    ],
    { caseInsensitive: true, localDomains: ['example.org'], dummyHash },
  );
  t.equal(db.lookup('alice')?.name, 'Alice');
  t.equal(db.lookup('ALICE@example.ORG')?.name, 'Alice');
  t.equal(db.lookup('carol')?.name, 'Carol@Example.org');
  t.equal(db.lookup('CAROL@EXAMPLE.ORG')?.name, 'Carol@Example.org');
  t.equal((await db.verifyPassword('aLiCe', 'a'))?.name, 'Alice');
  t.throws(
    () => UserDatabase.fromEntries([{ name: 'a', password: 'x' }, { name: 'A', password: 'y' }], { caseInsensitive: true }),
    { code: 'broken-file', lines: [{ line: 2, reason: /duplicate user A/ }] },
    'names equal but for case are one user twice',
  );
});

t.test('unknown users cost a dummy check and never log in', async (t) => {
  const db = UserDatabase.fromEntries([{ name: 'bob', password: '{PLAIN}b' }], { dummyHash });
  t.equal(await db.verifyPassword('nobody', 'secret'), undefined, 'even with the dummy hash\'s own password');
  t.equal(await db.verifyPassword('../etc/passwd', 'x'), undefined);
  t.match(db.stats(), { unknownUsers: 2, rejected: 2, accepted: 0 });
  const argon = UserDatabase.fromEntries([{ name: 'bob', password: '{PLAIN}b' }]);
  t.equal(await argon.verifyPassword('nobody', 'x'), undefined, 'with the default ARGON2ID dummy');
  t.equal(argon.stats().unknownUsers, 1);
});

t.test('an unusable entry fails and is logged for the operator', async (t) => {
  const log = captureLog();
  const db = UserDatabase.fromEntries([{ name: 'u', password: '{NOPE}x' }, { name: 'v', password: '{SHA256}short' }], {
    logger: log.logger,
    dummyHash,
  });
  t.equal(await db.verifyPassword('u', 'x'), undefined);
  t.equal(await db.verifyPassword('v', 'x'), undefined);
  t.match(
    log.lines.filter((l) => l['msg'] === 'users file entry cannot be checked'),
    [
      { user: 'u', reason: 'unknown-scheme' },
      { user: 'v', reason: 'malformed-hash' },
    ],
  );
  t.notOk(JSON.stringify(log.lines).includes('"x"'), 'no password in the log');
});

t.test('APOP and CRAM-MD5 digests for PLAIN users only', async (t) => {
  const db = await UserDatabase.load(fixturePath('dovecot.passwd'), { dummyHash });
  t.ok(db.hasSharedSecrets(), 'bob is PLAIN');
  const challenge = '<1896.697170952@dbc.mtview.ca.us>';
  const apop = createHash('md5').update(challenge + 'secret').digest('hex');
  const cram = createHmac('md5', 'secret').update(challenge).digest('hex');
  t.equal((await db.verifyDigest('APOP', 'bob', challenge, apop))?.name, 'bob');
  t.equal((await db.verifyDigest('CRAM-MD5', 'bob', challenge, cram))?.name, 'bob');
  t.equal((await db.verifyDigest('APOP', 'bob', challenge, apop.toUpperCase()))?.name, 'bob', 'hex in either case');
  t.equal(await db.verifyDigest('APOP', 'bob', challenge, cram), undefined, 'mechanisms differ');
  t.equal(await db.verifyDigest('CRAM-MD5', 'bob', '<other@host>', cram), undefined, 'another challenge');
  t.equal(await db.verifyDigest('APOP', 'bob', challenge, apop.slice(1)), undefined, 'short digest');
  t.equal(await db.verifyDigest('APOP', 'bob', challenge, `${apop} `), undefined);
  t.equal(await db.verifyDigest('APOP', 'alice', challenge, apop), undefined, 'hashed password: no shared secret');
  t.equal(await db.verifyDigest('APOP', 'nobody', challenge, apop), undefined);

  // RFC 1939 section 7's own example: secret "tanstaaf".
  const rfc = UserDatabase.fromEntries([{ name: 'mrose', password: '{PLAIN}tanstaaf' }]);
  t.ok(await rfc.verifyDigest('APOP', 'mrose', '<1896.697170952@dbc.mtview.ca.us>', 'c4c9334bac560ecc979e58001b3e22fb'));
  // RFC 2195 section 2's example: secret "tanstaaftanstaaf".
  const cramRfc = UserDatabase.fromEntries([{ name: 'tim', password: '{PLAIN}tanstaaftanstaaf' }]);
  t.ok(await cramRfc.verifyDigest('CRAM-MD5', 'tim', '<1896.697170952@postoffice.reston.mci.net>', 'b913a602c7eda7a495b4e6e7334d3890'));

  const none = UserDatabase.fromEntries([
    { name: 'a', password: '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE' },
    { name: 'b', password: '{PLAIN}x', extraFields: [{ key: 'nologin', value: undefined }] },
  ]);
  t.notOk(none.hasSharedSecrets(), 'hashes and nologin users do not count');
  t.equal(await none.verifyDigest('APOP', 'b', challenge, createHash('md5').update(challenge + 'x').digest('hex')), undefined);
});

t.test('load refuses a missing or broken file with every bad line', async (t) => {
  const dir = t.testdir();
  await t.rejects(UserDatabase.load(join(dir, 'missing')), { code: 'unreadable', exitCode: 66 });
  const err = await UserDatabase.load(fixturePath('broken.passwd')).catch((e: unknown) => e);
  t.ok(err instanceof UsersFileError);
  if (!(err instanceof UsersFileError)) return;
  t.equal(err.code, 'broken-file');
  t.equal(err.lines.length, 13);
  t.match(err.message, /broken\.passwd: 13 bad lines: line 3: empty name;/);
});

t.test('reload swaps a good file, keeps the old table for a broken one, and says why', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'passwd');
  writeFileSync(file, 'a:{PLAIN}1\nb:{PLAIN}2\n');
  const log = captureLog();
  const db = await UserDatabase.load(file, { logger: log.logger, dummyHash });
  const events: ReloadEvent[] = [];
  const off = db.onReload((e) => events.push(e));

  t.match(await db.reload(), { ok: true, changed: false, users: 2 }, 'same bytes: nothing to swap');

  writeFileSync(file, 'a:{PLAIN}1\nc:{PLAIN}3\n');
  t.match(await db.reload(), { ok: true, changed: true, users: 2 });
  t.ok(db.lookup('c'));
  t.equal(db.lookup('b'), undefined);

  writeFileSync(file, 'a:{PLAIN}new\nd d:{PLAIN}4\n::\n');
  const refused = await db.reload();
  t.match(refused, { ok: false, errors: [{ line: 2, reason: /whitespace/ }, { line: 3, reason: /empty name/ }] });
  t.ok(db.lookup('c'), 'old table kept');
  t.ok(await db.verifyPassword('a', '1'), 'old password still works');
  t.equal(await db.verifyPassword('a', 'new'), undefined);
  const bad = log.lines.filter((l) => l['msg'] === 'users file: bad line');
  t.same(bad.map((l) => l['line']), [2, 3], 'each bad line logged');
  t.ok(log.lines.some((l) => String(l['msg']).startsWith('users file refused, keeping the previous users')));

  renameSync(file, join(dir, 'gone'));
  t.match(await db.reload(), { ok: false, reason: /ENOENT/, errors: [] });
  t.ok(db.lookup('c'), 'a vanished file keeps the table too');

  t.equal(events.length, 4, 'listeners hear every attempt');
  off();
  await db.reload();
  t.equal(events.length, 4, 'unsubscribed');
  t.match(db.stats(), { reloads: 2, reloadsRefused: 3 });

  const memory = UserDatabase.fromEntries([{ name: 'a', password: 'x' }]);
  t.match(await memory.reload(), { ok: false, reason: 'not loaded from a file' });
  await db.close();
});

t.test('reloads are serialised in call order', async (t) => {
  const dir = t.testdir({ passwd: 'a:{PLAIN}1\n' });
  const file = join(dir, 'passwd');
  const db = await UserDatabase.load(file, { dummyHash });
  writeFileSync(file, 'b:{PLAIN}1\n');
  const first = db.reload();
  writeFileSync(file, 'c:{PLAIN}1\n');
  const second = db.reload();
  const [one, two] = await Promise.all([first, second]);
  t.ok(one.ok && two.ok);
  t.ok(db.lookup('c'), 'the later call wins');
});

t.test('watch picks up an atomic rename-replace and an in-place write', async (t) => {
  const dir = t.testdir({ passwd: 'a:{PLAIN}1\n', 'other.txt': 'x' });
  const file = join(dir, 'passwd');
  const db = await UserDatabase.load(file, { dummyHash, debounceMs: 0 });
  await db.watch();
  await db.watch(); // idempotent

  // The way `maildird user` and editors save: a temp file in the same folder, renamed over.
  let reloaded = nextReload(db);
  writeFileSync(join(dir, '.passwd.tmp'), 'a:{PLAIN}1\nb:{PLAIN}2\n');
  renameSync(join(dir, '.passwd.tmp'), file);
  t.match(await reloaded, { ok: true, changed: true, users: 2 });
  t.ok(db.lookup('b'));

  reloaded = nextReload(db);
  writeFileSync(file, 'a:{PLAIN}1\nb:{PLAIN}2\nc:{PLAIN}3\n');
  t.match(await reloaded, { ok: true, users: 3 });

  reloaded = nextReload(db);
  copyFileSync(fixturePath('broken.passwd'), file);
  t.match(await reloaded, { ok: false });
  t.ok(db.lookup('c'), 'broken replacement refused');

  await db.close();
  await db.close(); // idempotent
});

t.test('hashWorkers: costly checks on a thread, the same answers, stopped by close()', async (t) => {
  const db = await UserDatabase.load(fixturePath('dovecot.passwd'), { hashWorkers: 1 });
  t.equal((await db.verifyPassword('grace', 'secret'))?.name, 'grace', 'ARGON2ID on the thread');
  t.equal(await db.verifyPassword('grace', 'wrong'), undefined);
  t.equal(await db.verifyPassword('nobody', 'secret'), undefined, 'the default ARGON2ID dummy on the thread');
  t.equal((await db.verifyPassword('bob', 'secret'))?.name, 'bob', 'PLAIN inline');
  await db.close();
  t.equal((await db.verifyPassword('heidi', 'secret'))?.name, 'heidi', 'after close, inline');
});
