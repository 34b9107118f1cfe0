// A child process for the batch crash tests. Through the built dist/ it
// locks the maildrop, then either applies a batch or recovers a journal,
// counting every FsLayer call; it can be killed with SIGKILL at a chosen call.
//
//   node journal-child.mjs SPEC.json
//
// SPEC: { dir, form: 'maildir'|'flat', phase: 'batch'|'recover', mode: 'trash'|'expunge',
//         deleted: [{ path, location }], seen: [{ path, location }],
//         killAt: N,        // SIGKILL itself just before FsLayer call number N (0: never)
//         reportOps: bool } // write {"op":n} before each call (for a parent that kills)
// Reports {"event":"done","ops":n,...} when it finishes.
import { readFileSync } from 'node:fs';
import { acquireMaildropLock } from '../../dist/storage/maildir/lock.js';
import { applyBatch, planBatch, recoverJournal } from '../../dist/storage/maildir/journal.js';
import { maildirPaths } from '../../dist/storage/maildir/layout.js';
import { nodeFs } from '../../dist/storage/maildir/fs.js';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let ops = 0;

// Buffered writes (a pipe may be full): a parent that kills on a report
// kills a little later than the call it saw, which is just another moment.
const say = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

const counting = new Proxy(nodeFs, {
  get(target, prop) {
    const value = target[prop];
    if (typeof value !== 'function') return value;
    return (...args) => {
      ops += 1;
      if (spec.reportOps) say({ op: ops, call: prop, path: typeof args[0] === 'string' ? args[0] : undefined });
      if (ops === spec.killAt) process.kill(process.pid, 'SIGKILL');
      return value.apply(target, args);
    };
  },
});

const paths = maildirPaths(spec.dir);
const lock = await acquireMaildropLock(counting, paths);
let result;
if (spec.phase === 'recover') {
  result = await recoverJournal(counting, paths);
} else {
  const plan = planBatch(paths, spec.form, { deleted: spec.deleted, seen: spec.seen }, spec.mode, ':');
  result = await applyBatch(counting, paths, plan);
}
await lock.release();
say({ event: 'done', ops, result: result ?? null });
