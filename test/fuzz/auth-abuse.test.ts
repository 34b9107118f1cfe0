/**
 * Password guessing through the real servers (issue 6), by structure, with
 * an injected clock and timers fired by hand (no timings here; the timings
 * are measured by `npm run stress`, test/stress/timing.ts):
 *
 * - from one address, the delay served before each next check grows
 *   (0, 0, 1, 2, 4, 8, 15, 15 s), and the check itself waits for it;
 * - one user sprayed from many addresses costs at most 2 s per attempt, and
 *   the real user still logs in (no lockout);
 * - every failure is logged with the delay the next attempt will owe;
 * - an unknown user and a wrong password get the same reply and the same
 *   work: the dummy check runs for the unknown one, against a stored
 *   password of the file's own most common scheme (regression: it was a
 *   fixed ARGON2ID hash, 35x slower than a SHA512-CRYPT check).
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoginThrottle } from '../../src/auth/throttle.js';
import { DEFAULT_DUMMY_HASH, UserDatabase } from '../../src/auth/user-db.js';
import { hashPassword } from '../../src/auth/password.js';
import { captureLog } from '../helpers/log-capture.js';
import { startPop3 } from '../helpers/pop3-harness.js';
import { ManualTimers } from '../helpers/pop3-timers.js';
import { ManualTimers as SmtpTimers } from '../helpers/smtp-timers.js';
import { startSmtp, testUsers } from '../helpers/smtp-setup.js';
import { codeOf } from '../helpers/smtp-client.js';

t.test('POP3 from one address: growing delays served before each check, the same reply for unknown and wrong, every failure logged', async (t) => {
  const clock = 1_000_000;
  const throttle = new LoginThrottle({ now: () => clock });
  const timers = new ManualTimers();
  const log = captureLog('info');
  const h = await startPop3(t, { kind: 'memory', server: { throttle, timers, logger: log.logger } });
  // Unknown names and a real user's wrong password, alternating: the address's count grows either way.
  const attempts = ['nobody0', 'bob', 'nobody2', 'bob', 'nobody4', 'alice', 'nobody6', 'nobody7'];
  // Owed before each attempt: the first failure is free (a typo), then 1, 2, 4, 8 s, capped at 15 s.
  const expected = [0, 0, 1000, 2000, 4000, 8000, 15_000, 15_000];
  const replies: string[] = [];
  for (const [i, user] of attempts.entries()) {
    const { client } = await h.connect();
    await client.command(`USER ${user}`, '+OK');
    const before = h.users.stats().rejected;
    client.send('PASS not-the-password');
    const owed = expected[i] ?? -1;
    if (owed > 0) {
      await timers.waitFor('auth-delay');
      t.same(timers.durations('auth-delay'), [owed], `attempt ${i + 1}: ${owed} ms owed`);
      t.equal(h.users.stats().rejected, before, 'the password is not checked before the delay is served');
      timers.fire('auth-delay');
    } else {
      t.same(timers.durations('auth-delay'), [], `attempt ${i + 1}: nothing owed`);
    }
    replies.push(await client.line());
    t.equal(h.users.stats().rejected, before + 1, 'then it is checked');
    await client.command('QUIT', /^\+OK/);
  }
  t.same([...new Set(replies)], ['-ERR [AUTH] Authentication failed'], 'one reply for unknown users and wrong passwords');
  t.equal(h.users.stats().unknownUsers, 5, 'each unknown user cost a dummy check');
  const failures = log.lines.filter((l) => l['msg'] === 'authentication failed');
  t.equal(failures.length, attempts.length, 'every failure logged');
  t.same(
    failures.map((l) => l['nextDelayMs']),
    [0, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000],
    'with the delay the next attempt owes',
  );
  t.ok(failures.every((l) => !JSON.stringify(l).includes('not-the-password')), 'never the password');
});

t.test('SMTP AUTH: one user sprayed from many addresses waits at most 2 s per attempt, and the real user still logs in', async (t) => {
  const throttle = new LoginThrottle({ now: () => 5_000_000 });
  const h = await startSmtp(t, { throttle, users: testUsers(), authOffered: 'always' });
  const timers = h.timers as SmtpTimers;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const owed: number[] = [];
  for (let i = 0; i < 8; i++) {
    const c = await h.connect({ localAddress: `127.0.8.${10 + i}` });
    await c.ehlo();
    c.write(`AUTH PLAIN ${b64('\0alice\0guess-' + i)}\r\n`);
    await new Promise((resolve) => setImmediate(resolve));
    // A delay owed is a running 'auth-delay' timer; fire it and read the answer.
    for (let k = 0; k < 50 && timers.pending('auth-delay').length === 0 && !c.transcript.includes('535'); k++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const pending = timers.pending('auth-delay');
    owed.push(pending[0] ?? 0);
    timers.fire('auth-delay');
    t.equal(codeOf(await c.reply()), '535 5.7.8');
    c.destroy();
  }
  t.same(owed, [0, 0, 1000, 2000, 2000, 2000, 2000, 2000], 'per user: capped at 2 s');
  const real = await h.connect({ localAddress: '127.0.8.99' });
  await real.ehlo();
  real.write(`AUTH PLAIN ${b64('\0alice\0alice-secret')}\r\n`);
  for (let k = 0; k < 50 && timers.pending('auth-delay').length === 0; k++) await new Promise((resolve) => setImmediate(resolve));
  t.same(timers.pending('auth-delay'), [2000], 'the real user waits 2 s');
  timers.fire('auth-delay');
  t.equal(codeOf(await real.reply()), '235 2.7.0', 'and is not locked out');
  await real.quit();
});

t.test('the dummy check uses a stored password of the file\'s most common scheme (regression: a fixed ARGON2ID dummy leaked unknown users by timing)', async (t) => {
  const sha = await hashPassword('s1', 'SHA512-CRYPT');
  const sha2 = await hashPassword('s2', 'SHA512-CRYPT');
  const db = UserDatabase.fromEntries([
    { name: 'plain', password: '{PLAIN}p' },
    { name: 'a', password: sha },
    { name: 'b', password: sha2 },
    { name: 'off', password: '{PLAIN}x', extraFields: [{ key: 'nologin', value: undefined }] },
    { name: 'off2', password: '{PLAIN}y', extraFields: [{ key: 'nologin', value: undefined }] },
  ]);
  t.equal(db.dummyHash, sha, 'the first SHA512-CRYPT entry: the same scheme and cost as a wrong password');
  t.equal(await db.verifyPassword('nobody', 's1'), undefined, 'its own password does not log anyone in');
  t.equal(await db.verifyPassword('a', 's2'), undefined);
  t.equal(db.stats().unknownUsers, 1);
  t.equal(UserDatabase.fromEntries([]).dummyHash, DEFAULT_DUMMY_HASH, 'no usable password: the built-in ARGON2ID dummy');
  t.equal(UserDatabase.fromEntries([{ name: 'a', password: sha }], { dummyHash: '{PLAIN}z' }).dummyHash, '{PLAIN}z', 'a configured dummy wins');

  const dir = t.testdir({ passwd: `a:${sha}\nb:${sha2}\n` });
  const file = UserDatabase.load(join(dir, 'passwd'));
  const loaded = await file;
  t.equal(loaded.dummyHash, sha);
  writeFileSync(join(dir, 'passwd'), 'a:{PLAIN}1\nb:{PLAIN}2\nc:{PLAIN}3\n');
  await loaded.reload();
  t.equal(loaded.dummyHash, '{PLAIN}1', 'a reload follows the file');
  await loaded.close();
});
