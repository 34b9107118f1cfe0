/**
 * Leftovers of a killed maildird (found by the crash harness, issue 6:
 * test/fuzz/crash.test.ts): tmp/ files, lock scratch files and cache temp
 * files whose process is gone are removed at the next login; those of live
 * processes, other hosts and other software stay (the 36-hour rule covers
 * them).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { defaultIsPidAlive, ownPidOf, sweepLeftovers } from '../../../src/storage/maildir/leftovers.js';
import { sanitizeHost } from '../../../src/storage/maildir/filename.js';
import { maildirPaths } from '../../../src/storage/maildir/layout.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { scratchTmpName, scratchTmpPid, type LockOwner, type ProcessProbe } from '../../../src/storage/maildir/lock.js';
import { MaildirStore } from '../../../src/storage/maildir/maildir-store.js';
import { silentLogger } from '../../../src/log/logger.js';

const HOST = 'mx.example';
const DEAD = 4_000_001;
const LIVE = 4_000_002;
const isPidAlive = (pid: number) => pid !== DEAD;
const probe: ProcessProbe = { self: async () => ({ start: '1' }), isAlive: async (o: LockOwner) => o.pid !== DEAD };
const owner = (pid: number, host = HOST) => `${JSON.stringify({ host, pid, start: '1', token: 'ab' })}\n`;

t.test('ownPidOf: only our unique form with our host', async (t) => {
  t.equal(ownPidOf('1700000000.M1P42Q3.mx.example', 'mx.example'), 42);
  t.equal(ownPidOf('1700000000.M1P42Q3.other', 'mx.example'), undefined);
  t.equal(ownPidOf('1700000000.P42V803I12.mx.example', 'mx.example'), undefined, 'another writer\'s form');
  t.equal(ownPidOf('1700000000.M1P0Q3.mx.example', 'mx.example'), undefined, 'pid 0 is never probed');
  t.equal(ownPidOf('garbage', 'mx.example'), undefined);
});

t.test('defaultIsPidAlive: this process lives, an exited child does not, odd pids are kept', async (t) => {
  t.ok(defaultIsPidAlive(process.pid));
  const child = spawnSync(process.execPath, ['-e', '']);
  t.notOk(defaultIsPidAlive(child.pid), 'an exited child');
  t.ok(defaultIsPidAlive(0) && defaultIsPidAlive(-1), 'never signal a process group');
});

t.test('removes what dead processes left; keeps live ones, other hosts and other writers', async (t) => {
  const dir = t.testdir({
    u: {
      cur: {},
      new: {},
      tmp: {
        [`1700000000.M1P${DEAD}Q1.${HOST}`]: 'half a message',
        [`1700000000.M2P${LIVE}Q1.${HOST}`]: 'in flight',
        [`1700000000.M3P${DEAD}Q1.other.host`]: 'another host',
        '1700000000.P123V803I12.mx.example': 'postfix',
      },
      'maildird.lock': owner(process.pid),
      'maildird.lock.0a1b.tmp': owner(DEAD),
      'maildird.lock.0a1c.tmp': owner(LIVE),
      'maildird.lock.0a1d.stale': owner(DEAD),
      'maildird.lock.0a1e.probe': '',
      'maildird.lock.0a1f.probe': '',
      'maildird.lock.takeover': owner(DEAD),
      [`maildird-listing.cache.${DEAD}.tmp`]: 'half a cache',
      [`maildird-listing.cache.${LIVE}.tmp`]: 'a cache being written',
    },
  });
  const paths = maildirPaths(join(dir, 'u'));
  const old = new Date(Date.now() - 10 * 60_000);
  utimesSync(join(paths.dir, 'maildird.lock.0a1e.probe'), old, old);
  const removed = await sweepLeftovers(nodeFs, paths, { host: HOST, form: 'maildir', probe, isPidAlive, staleMs: 120_000, logger: silentLogger() });
  t.same(readdirSync(paths.tmp).sort(), [`1700000000.M2P${LIVE}Q1.${HOST}`, `1700000000.M3P${DEAD}Q1.other.host`, '1700000000.P123V803I12.mx.example'].sort());
  t.same(
    readdirSync(paths.dir).filter((n) => n !== 'cur' && n !== 'new' && n !== 'tmp').sort(),
    ['maildird.lock', 'maildird.lock.0a1c.tmp', 'maildird.lock.0a1f.probe', 'maildird.lock.takeover', `maildird-listing.cache.${LIVE}.tmp`].sort(),
  );
  t.equal(removed, 5);
});

t.test('a lock scratch torn before its content was written goes when the pid in its name is gone', async (t) => {
  const hex = (pid: number) => pid.toString(16).padStart(8, '0');
  const dead = `maildird.lock.${hex(DEAD)}${'a'.repeat(24)}.tmp`;
  const live = `maildird.lock.${hex(LIVE)}${'b'.repeat(24)}.tmp`;
  t.equal(scratchTmpPid(dead), DEAD);
  t.equal(scratchTmpPid('maildird.lock.0a1b.tmp'), undefined, 'older names carry no pid');
  t.match(scratchTmpName('/m/u/maildird.lock', 'c'.repeat(24)), /^\/m\/u\/maildird\.lock\.[0-9a-f]{32}\.tmp$/);
  t.equal(scratchTmpPid(scratchTmpName('maildird.lock', 'c'.repeat(24)).slice(0)), process.pid);
  const dir = t.testdir({ u: { cur: {}, new: {}, tmp: {}, 'maildird.lock': owner(process.pid), [dead]: '', [live]: '' } });
  const paths = maildirPaths(join(dir, 'u'));
  await sweepLeftovers(nodeFs, paths, { host: HOST, form: 'maildir', probe, isPidAlive, staleMs: 120_000, logger: silentLogger() });
  t.notOk(existsSync(join(paths.dir, dead)));
  t.ok(existsSync(join(paths.dir, live)));
});

t.test('flat folders: .<unique>.tmp of a dead process goes, messages never', async (t) => {
  const dir = t.testdir({ u: { [`.1700000000.M1P${DEAD}Q1.${HOST}.tmp`]: 'x', [`1700000000.M1P${DEAD}Q1.${HOST}.eml`]: 'a message' } });
  const paths = maildirPaths(join(dir, 'u'));
  await sweepLeftovers(nodeFs, paths, { host: HOST, form: 'flat', probe, isPidAlive, staleMs: 120_000, logger: silentLogger() });
  t.same(readdirSync(paths.dir), [`1700000000.M1P${DEAD}Q1.${HOST}.eml`]);
});

t.test('regression: the first login after a crash finds no tmp/ file, lock scratch or cache temp of the dead server', async (t) => {
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const host = sanitizeHost(hostname());
  const dir = t.testdir({
    mail: {
      alice: {
        cur: {},
        new: {},
        tmp: { [`1700000000.M1P${dead}Q7.${host}`]: 'cut by SIGKILL' },
        [`maildird.lock.0123abcd.tmp`]: `${JSON.stringify({ host: hostname(), pid: dead, start: '1', token: 'x' })}\n`,
        [`maildird-listing.cache.${dead}.tmp`]: 'cut',
      },
    },
  });
  const store = await MaildirStore.open({ root: join(dir, 'mail') });
  const drop = await store.openMaildrop({ name: 'alice' });
  await drop.release();
  await store.close();
  t.same(readdirSync(join(dir, 'mail', 'alice', 'tmp')), []);
  t.notOk(existsSync(join(dir, 'mail', 'alice', 'maildird.lock.0123abcd.tmp')));
  t.notOk(existsSync(join(dir, 'mail', 'alice', `maildird-listing.cache.${dead}.tmp`)));
});
