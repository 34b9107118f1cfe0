import t from 'tap';
import { Worker } from 'node:worker_threads';
import type { HashJob, HashResult } from '../../src/auth/hash-worker.js';

t.test('answers each job with its id and the check result', async (t) => {
  const worker = new Worker(new URL('../../src/auth/hash-worker.js', import.meta.url));
  t.teardown(() => worker.terminate());
  const results: HashResult[] = [];
  const done = new Promise<void>((resolve, reject) => {
    worker.on('message', (r: HashResult) => {
      results.push(r);
      if (results.length === 3) resolve();
    });
    worker.once('error', reject);
  });
  const jobs: HashJob[] = [
    { id: 7, stored: '{PLAIN}a', password: 'a', defaultScheme: undefined },
    { id: 8, stored: 'a', password: 'a', defaultScheme: 'PLAIN' },
    { id: 9, stored: '{NOPE}a', password: 'a', defaultScheme: undefined },
  ];
  for (const job of jobs) worker.postMessage(job);
  await done;
  t.same(
    results.sort((a, b) => a.id - b.id),
    [
      { id: 7, check: { ok: true } },
      { id: 8, check: { ok: true } },
      { id: 9, check: { ok: false, reason: 'unknown-scheme', detail: 'unknown password scheme {NOPE}' } },
    ],
  );
});
