import t from 'tap';
import { HashWorkerPool, defaultPoolSize } from '../../src/auth/hash-pool.js';
import { checkPassword } from '../../src/auth/password.js';
import { loadVectors } from '../helpers/auth-vectors.js';

const vectors = loadVectors();
const find = (command: string) => {
  const v = vectors.find((x) => x.command.join(' ') === command);
  if (v === undefined) throw new Error(`no vector ${command}`);
  return v;
};
const argon = find('doveadm pw -s ARGON2ID -p secret');
const bcrypt = find('htpasswd -nbB -C 10 user secret');
const sha = find('mkpasswd -m sha-512 secret');

/** Count event-loop turns until `work` settles: a stalled loop counts (almost) nothing. */
async function turnsDuring(work: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  void work.finally(() => {
    done = true;
  });
  while (!done) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    turns++;
  }
  return turns;
}

// One pool for the checks below: under tap each thread start compiles the TypeScript again (seconds).
t.test('one pool: inline for cheap schemes, threads for costly ones, the loop never stalls', async (t) => {
  const pool = new HashWorkerPool({ size: 2 });
  t.teardown(() => pool.close());

  t.same(await pool.check('{PLAIN}secret', 'secret'), { ok: true });
  t.same(await pool.check(find('doveadm pw -s SSHA512 -p secret').hash, 'secret'), { ok: true });
  t.match(await pool.check('{NOPE}x', 'x'), { ok: false, reason: 'unknown-scheme' });
  t.equal(pool.threads, 0, 'no thread for PLAIN, salted digests or unknown schemes');

  for (const v of [argon, bcrypt, sha]) {
    t.same(await pool.check(v.hash, v.password), { ok: true }, v.hash.slice(0, 20));
    t.match(await pool.check(v.hash, `x${v.password}`), { ok: false, reason: 'mismatch' });
  }
  t.match(await pool.check('$6$broken', 'x', { defaultScheme: 'CRYPT' }), { ok: false, reason: 'malformed-hash' });
  t.ok(pool.threads >= 1 && pool.threads <= 2, `${pool.threads} threads`);

  const pooled = await turnsDuring(pool.check(argon.hash, argon.password));
  const inline = await turnsDuring(checkPassword(argon.hash, argon.password));
  t.ok(pooled > 100, `${pooled} event-loop turns during a pooled Argon2 check`);
  t.ok(inline < pooled, `inline: ${inline} turns (the loop is stalled)`);

  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.check(sha.hash, i % 2 === 0 ? 'secret' : 'wrong')));
  t.same(results.map((r) => r.ok), [true, false, true, false, true, false, true, false], 'answers go to the right callers');
  t.ok(pool.threads <= 2, 'never more threads than its size');
});

t.test('close() finishes waiting checks inline and later checks run inline', async (t) => {
  const pool = new HashWorkerPool({ size: 1 });
  const pending = [pool.check(sha.hash, 'secret'), pool.check(sha.hash, 'secret'), pool.check(sha.hash, 'nope')];
  await pool.close();
  t.same((await Promise.all(pending)).map((r) => r.ok), [true, true, false]);
  t.equal(pool.threads, 0);
  t.same(await pool.check(sha.hash, 'secret'), { ok: true });
  t.equal(pool.threads, 0);
});

t.test('a worker that cannot start: checks still answer, and the pool degrades to inline', async (t) => {
  const pool = new HashWorkerPool({ size: 1, workerUrl: new URL('./no-such-worker.js', import.meta.url) });
  t.teardown(() => pool.close());
  for (let i = 0; i < 3; i++) t.same(await pool.check(sha.hash, 'secret'), { ok: true }, `attempt ${i + 1}`);
  t.ok(pool.degraded);
  t.same(await pool.check(sha.hash, 'secret'), { ok: true });
  t.equal(pool.threads, 0);
});

t.test('default size leaves a core for the event loop', async (t) => {
  t.ok(defaultPoolSize() >= 1 && defaultPoolSize() <= 4);
});
