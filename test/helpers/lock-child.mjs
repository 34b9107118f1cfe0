// A child process for lock tests: takes the maildrop lock of the folder in
// argv[2] through the built dist/, reports on stdout as JSON lines, and
// waits for commands on stdin.
//
//   node lock-child.mjs DIR [--wait-go] [--stale-ms N]
//
// --wait-go: read a "go" line before trying (so several children race at once).
// Reports {"event":"locked","owner":{...}} or {"event":"in-use","message":...}
// or {"event":"error",...}; then a "release" line releases the lock and exits,
// end of stdin exits without releasing (like a crash, but with exit code 0).
import { createInterface } from 'node:readline';
import { acquireMaildropLock } from '../../dist/storage/maildir/lock.js';
import { maildirPaths } from '../../dist/storage/maildir/layout.js';
import { nodeFs } from '../../dist/storage/maildir/fs.js';

const dir = process.argv[2];
const waitGo = process.argv.includes('--wait-go');
const staleAt = process.argv.indexOf('--stale-ms');
const staleMs = staleAt > 0 ? Number(process.argv[staleAt + 1]) : undefined;

const report = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const lines = createInterface({ input: process.stdin });
const iterator = lines[Symbol.asyncIterator]();
const nextLine = async () => {
  const { value, done } = await iterator.next();
  return done ? undefined : value;
};

if (waitGo) {
  report({ event: 'ready', pid: process.pid });
  if ((await nextLine()) !== 'go') process.exit(0);
}

let lock;
try {
  lock = await acquireMaildropLock(nodeFs, maildirPaths(dir), staleMs === undefined ? {} : { staleMs });
  report({ event: 'locked', owner: lock.owner });
} catch (err) {
  report({ event: err.kind === 'in-use' ? 'in-use' : 'error', kind: err.kind, message: err.message });
}

for (;;) {
  const line = await nextLine();
  if (line === undefined) process.exit(0);
  if (line === 'release') {
    await lock?.release();
    report({ event: 'released' });
    process.exit(0);
  }
}
