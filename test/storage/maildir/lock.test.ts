import t, { type Test } from 'tap';
import { readFileSync, writeFileSync, existsSync, statSync, utimesSync, readdirSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  acquireMaildropLock,
  linuxProcessProbe,
  parseOwner,
  type LockOwner,
  type MaildropLock,
} from '../../../src/storage/maildir/lock.js';
import { maildirPaths } from '../../../src/storage/maildir/layout.js';
import { nodeFs, type FsLayer } from '../../../src/storage/maildir/fs.js';
import { StorageError } from '../../../src/errors.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';
import { rejectsKind } from '../../helpers/maildir-assert.js';
import { assertDistFresh, captureLogger, spawnJsonChild, type JsonChild } from '../../helpers/lock-journal-support.js';

const HOST = hostname();

function lockPaths(t: Test) {
  return maildirPaths(t.testdir({ cur: {}, new: {}, tmp: {} }));
}

/** Write a lock file as another session would, with mtime `ageMs` in the past. */
function plantLock(file: string, owner: Partial<LockOwner> & { host: string; pid: number }, ageMs = 0): void {
  const full = { start: '1', token: 'planted', ...owner };
  writeFileSync(file, `${JSON.stringify(full)}\n`, { mode: 0o600 });
  const when = new Date(Date.now() - ageMs);
  utimesSync(file, when, when);
}

const lockOwnerOf = (file: string) => parseOwner(readFileSync(file));

/** Scratch files the lock makes beside itself must never be left behind. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('maildird.lock.'));
}

t.test('a lock is exclusive in one process, says who holds it, and release is idempotent', async (t) => {
  const paths = lockPaths(t);
  const a = await acquireMaildropLock(nodeFs, paths);
  t.ok(existsSync(paths.lockFile));
  t.equal(statSync(paths.lockFile).mode & 0o777, 0o600, 'mode 0600');
  const owner = lockOwnerOf(paths.lockFile);
  t.equal(owner?.host, HOST);
  t.equal(owner?.pid, process.pid);
  t.match(owner?.start, /^(\d+|ms:\d+)$/, 'process start time');
  t.same(owner, a.owner);

  try {
    await acquireMaildropLock(nodeFs, paths);
    t.fail('second lock resolved');
  } catch (err) {
    t.ok(err instanceof StorageError);
    t.equal((err as StorageError).kind, 'in-use');
    t.equal((err as StorageError).message, `maildrop is locked by ${HOST} pid ${process.pid}`);
  }
  await a.assertHeld();
  await a.release();
  await a.release();
  t.notOk(existsSync(paths.lockFile), 'released');
  await rejectsKind(t, a.assertHeld(), 'temporary', 'a released lock is not held');
  const b = await acquireMaildropLock(nodeFs, paths);
  t.not(b.owner.token, a.owner.token, 'each lock has its own token');
  await b.release();
  t.same(leftovers(paths.dir), [], 'no scratch files left');
});

t.test('concurrent acquires in one process: exactly one wins', async (t) => {
  const paths = lockPaths(t);
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => acquireMaildropLock(nodeFs, paths)));
  const won = results.filter((r): r is PromiseFulfilledResult<MaildropLock> => r.status === 'fulfilled');
  t.equal(won.length, 1, 'one holder');
  for (const r of results) {
    if (r.status === 'rejected') t.equal((r.reason as StorageError).kind, 'in-use');
  }
  await won[0]?.value.release();
  t.same(leftovers(paths.dir), []);
});

t.test('release removes the file only while it is still ours', async (t) => {
  const paths = lockPaths(t);
  const log = captureLogger();
  const a = await acquireMaildropLock(nodeFs, paths, { logger: log.logger });
  plantLock(paths.lockFile, { host: 'elsewhere', pid: 4242, token: 'theirs' });
  await rejectsKind(t, a.assertHeld(), 'temporary', 'assertHeld sees the lock is gone');
  await a.refresh();
  t.match(log.at(50).join('\n'), /taken over/, 'refresh logs the loss');
  t.equal(lockOwnerOf(paths.lockFile)?.token, 'theirs', 'refresh did not write over it');
  await a.release();
  t.equal(lockOwnerOf(paths.lockFile)?.token, 'theirs', 'release left the other lock alone');
  t.same(leftovers(paths.dir), []);
});

t.test('a lock held by another live process is refused; after SIGKILL it is taken over at once', async (t) => {
  const stale = assertDistFresh('storage/maildir/lock', 'storage/maildir/layout', 'storage/maildir/fs');
  if (stale !== undefined) return t.fail(stale);
  const paths = lockPaths(t);
  const child = spawnJsonChild('lock-child.mjs', [paths.dir]);
  t.teardown(() => child.process.kill('SIGKILL'));
  const locked = await child.next();
  t.equal(locked.event, 'locked', 'the child holds the lock');
  t.equal((locked.owner as LockOwner).pid, child.pid);

  try {
    await acquireMaildropLock(nodeFs, paths);
    t.fail('lock held by the child was granted');
  } catch (err) {
    t.equal((err as StorageError).kind, 'in-use');
    t.equal((err as StorageError).message, `maildrop is locked by ${HOST} pid ${child.pid}`);
  }

  child.process.kill('SIGKILL');
  const exit = await child.exited;
  t.equal(exit.signal, 'SIGKILL');
  t.equal(lockOwnerOf(paths.lockFile)?.pid, child.pid, 'the dead child left its lock behind');
  t.ok(Date.now() - statSync(paths.lockFile).mtimeMs < 120_000, 'and it is not old');

  const log = captureLogger();
  const mine = await acquireMaildropLock(nodeFs, paths, { logger: log.logger });
  t.equal(lockOwnerOf(paths.lockFile)?.token, mine.owner.token, 'taken over at once');
  const warn = log.lines.find((l) => l.level === 40 && l.msg === 'took over stale maildrop lock');
  t.ok(warn, 'takeover logged at warn');
  t.match(String(warn?.reason), new RegExp(`pid ${child.pid} on this host, is gone`));
  await mine.release();
  t.same(leftovers(paths.dir), []);
});

t.test('a child that releases lets the parent in', async (t) => {
  const stale = assertDistFresh('storage/maildir/lock');
  if (stale !== undefined) return t.fail(stale);
  const paths = lockPaths(t);
  const child = spawnJsonChild('lock-child.mjs', [paths.dir]);
  t.teardown(() => child.process.kill('SIGKILL'));
  t.equal((await child.next()).event, 'locked');
  await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use');
  child.send('release');
  t.equal((await child.next()).event, 'released');
  await child.exited;
  const mine = await acquireMaildropLock(nodeFs, paths);
  await mine.release();
});

t.test('a parent holding the lock refuses a child', async (t) => {
  const stale = assertDistFresh('storage/maildir/lock');
  if (stale !== undefined) return t.fail(stale);
  const paths = lockPaths(t);
  const mine = await acquireMaildropLock(nodeFs, paths);
  const child = spawnJsonChild('lock-child.mjs', [paths.dir]);
  t.teardown(() => child.process.kill('SIGKILL'));
  const answer = await child.next();
  t.equal(answer.event, 'in-use');
  t.equal(answer.message, `maildrop is locked by ${HOST} pid ${process.pid}`);
  child.send('release');
  await child.exited;
  await mine.release();
});

t.test('staleness by age, judged by the file system clock', async (t) => {
  await t.test('a lock from another host is live until 120 s without refresh', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 100_000);
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use', '100 s old: live');
    t.equal(lockOwnerOf(paths.lockFile)?.host, 'other.example');

    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 130_000);
    const log = captureLogger();
    const lock = await acquireMaildropLock(nodeFs, paths, { logger: log.logger });
    t.equal(lockOwnerOf(paths.lockFile)?.token, lock.owner.token, '130 s old: taken over');
    t.match(log.at(40).join('\n'), /took over stale maildrop lock/);
    await lock.release();
    t.same(leftovers(paths.dir), []);
  });

  await t.test('staleMs is configurable', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 10_000);
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use');
    const lock = await acquireMaildropLock(nodeFs, paths, { staleMs: 5_000 });
    await lock.release();
  });

  await t.test('the local clock is not consulted: a file system an hour behind us', async (t) => {
    // Times the file system reports are an hour behind this host's clock
    // (another host's NFS server). A lock refreshed 60 s ago by that clock
    // looks an hour old to Date.now(), but must still be live.
    const shifted = shiftClock(nodeFs, -3_600_000);
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 60_000);
    await rejectsKind(t, acquireMaildropLock(shifted, paths), 'in-use', 'live by the file system clock');
    // And an hour ahead: a lock 130 s old by that clock is stale even though
    // its mtime is in this host's future.
    const ahead = shiftClock(nodeFs, 3_600_000);
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 130_000);
    const lock = await acquireMaildropLock(ahead, paths);
    t.equal(lockOwnerOf(paths.lockFile)?.token, lock.owner.token, 'stale by the file system clock');
    await lock.release();
  });

  await t.test('an unreadable lock (torn, foreign) is judged by age alone', async (t) => {
    const paths = lockPaths(t);
    writeFileSync(paths.lockFile, '');
    try {
      await acquireMaildropLock(nodeFs, paths);
      t.fail('granted');
    } catch (err) {
      t.equal((err as StorageError).kind, 'in-use');
      t.match((err as StorageError).message, /unreadable lock file/);
    }
    const old = new Date(Date.now() - 200_000);
    utimesSync(paths.lockFile, old, old);
    const lock = await acquireMaildropLock(nodeFs, paths);
    await lock.release();
  });
});

t.test('a lock naming this host is stale at once when its process is gone or is another process', async (t) => {
  const self = await linuxProcessProbe.self();
  await t.test('this pid with another start time (pid reused)', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: HOST, pid: process.pid, start: `${self.start}0` });
    const lock = await acquireMaildropLock(nodeFs, paths);
    t.equal(lockOwnerOf(paths.lockFile)?.token, lock.owner.token);
    await lock.release();
  });
  await t.test('this pid, same start time, but an earlier boot', { skip: self.boot === undefined }, async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: HOST, pid: process.pid, start: self.start, boot: 'an-earlier-boot' });
    const lock = await acquireMaildropLock(nodeFs, paths);
    await lock.release();
  });
  await t.test('the same lock content with this process identity is live', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, {
      host: HOST,
      pid: process.pid,
      start: self.start,
      ...(self.boot === undefined ? {} : { boot: self.boot }),
    });
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use');
  });
  await t.test('a fresh lock from another host naming a dead local pid is not judged by our pids', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: 'other.example', pid: 999_999_999 });
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use');
  });
  await t.test('nonsense pids are never probed', async (t) => {
    t.equal(parseOwner(Buffer.from('{"host":"h","pid":-1,"start":"1","token":"x"}')), undefined);
    t.equal(parseOwner(Buffer.from('{"host":"h","pid":0,"start":"1","token":"x"}')), undefined);
    t.equal(parseOwner(Buffer.from('{"host":"h","pid":1.5,"start":"1","token":"x"}')), undefined);
    t.equal(parseOwner(Buffer.from('not json')), undefined);
  });
});

t.test('refresh keeps a live lock fresh', async (t) => {
  await t.test('without refresh an old lock of this very process goes stale', async (t) => {
    const paths = lockPaths(t);
    const a = await acquireMaildropLock(nodeFs, paths, { refreshMs: 3_600_000 });
    const old = new Date(Date.now() - 200_000);
    utimesSync(paths.lockFile, old, old);
    const b = await acquireMaildropLock(nodeFs, paths);
    await rejectsKind(t, a.assertHeld(), 'temporary', 'the first holder learns it lost the lock');
    await a.release();
    t.equal(lockOwnerOf(paths.lockFile)?.token, b.owner.token, "the loser's release leaves the new lock");
    await b.release();
  });

  await t.test('refresh() stamps the file system time and keeps the content', async (t) => {
    const paths = lockPaths(t);
    const a = await acquireMaildropLock(nodeFs, paths, { refreshMs: 3_600_000 });
    const before = readFileSync(paths.lockFile);
    const old = new Date(Date.now() - 200_000);
    utimesSync(paths.lockFile, old, old);
    await a.refresh();
    t.ok(statSync(paths.lockFile).mtimeMs > old.getTime() + 100_000, 'mtime moved to now');
    t.same(readFileSync(paths.lockFile), before, 'content unchanged');
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use', 'fresh again');
    await a.release();
  });

  await t.test('the timer refreshes on its own', async (t) => {
    const paths = lockPaths(t);
    const a = await acquireMaildropLock(nodeFs, paths, { refreshMs: 10 });
    const old = new Date(Date.now() - 200_000);
    utimesSync(paths.lockFile, old, old);
    // Wait for the event (bounded), not for a time.
    for (let i = 0; i < 500 && statSync(paths.lockFile).mtimeMs < old.getTime() + 100_000; i++) await delay(10);
    t.ok(statSync(paths.lockFile).mtimeMs > old.getTime() + 100_000, 'refreshed by the timer');
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use');
    await a.release();
    // After release the timer is stopped: an old mtime stays old.
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 200_000);
    const mtime = statSync(paths.lockFile).mtimeMs;
    await delay(50);
    t.equal(statSync(paths.lockFile).mtimeMs, mtime, 'no refresh after release');
  });
});

t.test('many takers race for one stale lock: exactly one wins', async (t) => {
  await t.test('in one process', async (t) => {
    for (let round = 0; round < 5; round++) {
      const paths = lockPaths(t);
      plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 200_000);
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => acquireMaildropLock(nodeFs, paths)));
      const won = results.filter((r): r is PromiseFulfilledResult<MaildropLock> => r.status === 'fulfilled');
      t.equal(won.length, 1, `round ${round}: one winner`);
      for (const r of results) {
        if (r.status === 'rejected') t.equal((r.reason as StorageError).kind, 'in-use', String(r.reason));
      }
      t.equal(lockOwnerOf(paths.lockFile)?.token, won[0]?.value.owner.token, 'the file names the winner');
      await won[0]?.value.release();
      t.same(leftovers(paths.dir), [], 'no scratch files left');
    }
  });

  await t.test('between processes', async (t) => {
    const stale = assertDistFresh('storage/maildir/lock');
    if (stale !== undefined) return t.fail(stale);
    for (let round = 0; round < 3; round++) {
      const paths = lockPaths(t);
      plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 200_000);
      const children: JsonChild[] = Array.from({ length: 6 }, () => spawnJsonChild('lock-child.mjs', [paths.dir, '--wait-go']));
      t.teardown(() => {
        for (const c of children) c.process.kill('SIGKILL');
      });
      for (const c of children) t.equal((await c.next()).event, 'ready');
      for (const c of children) c.send('go');
      const answers = await Promise.all(children.map((c) => c.next()));
      const winners = answers.filter((a) => a.event === 'locked');
      t.equal(winners.length, 1, `round ${round}: one winner among ${children.length} processes`);
      t.equal(answers.filter((a) => a.event === 'in-use').length, children.length - 1, 'the rest are told in-use');
      t.equal(lockOwnerOf(paths.lockFile)?.token, (winners[0]?.owner as LockOwner | undefined)?.token);
      for (const c of children) c.send('release');
      await Promise.all(children.map((c) => c.exited));
      t.notOk(existsSync(paths.lockFile), 'the winner released it');
      t.same(leftovers(paths.dir), []);
    }
  });
});

t.test('the takeover lock', async (t) => {
  await t.test('a live takeover by someone else means in-use', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 200_000);
    plantLock(`${paths.lockFile}.takeover`, { host: 'other.example', pid: 2 });
    await rejectsKind(t, acquireMaildropLock(nodeFs, paths), 'in-use');
  });
  await t.test('a takeover lock left by a dead process is removed', async (t) => {
    const paths = lockPaths(t);
    plantLock(paths.lockFile, { host: 'other.example', pid: 1 }, 200_000);
    const dead = spawnJsonChild('lock-child.mjs', ['/nonexistent-dir-for-a-pid']);
    await dead.next(); // it reports an error: we only need a pid that has ended
    dead.send('release');
    await dead.exited;
    plantLock(`${paths.lockFile}.takeover`, { host: HOST, pid: dead.pid });
    const log = captureLogger();
    const lock = await acquireMaildropLock(nodeFs, paths, { logger: log.logger });
    t.match(log.at(40).join('\n'), /removed stale maildrop takeover lock/);
    t.notOk(existsSync(`${paths.lockFile}.takeover`));
    await lock.release();
    t.same(leftovers(paths.dir), []);
  });
});

t.test('NFS: errors from link are checked against the files', async (t) => {
  await t.test('a link that happened but reported EIO still gives the lock', async (t) => {
    const paths = lockPaths(t);
    const fs = new FsRecorder();
    fs.fail({ op: 'link', path: /maildird\.lock$/, code: 'EIO', afterEffect: true, times: 1 });
    const lock = await acquireMaildropLock(fs, paths);
    t.equal(fs.ops('link').at(0)?.error, 'EIO', 'the link reported an error');
    t.equal(lockOwnerOf(paths.lockFile)?.token, lock.owner.token);
    await lock.release();
    t.same(leftovers(paths.dir), []);
  });
  await t.test('a link that really failed is a temporary error and leaves nothing', async (t) => {
    const paths = lockPaths(t);
    const fs = new FsRecorder();
    fs.fail({ op: 'link', path: /maildird\.lock$/, code: 'EIO', times: 1 });
    await rejectsKind(t, acquireMaildropLock(fs, paths), 'temporary');
    t.notOk(existsSync(paths.lockFile));
    t.same(leftovers(paths.dir), []);
  });
  await t.test('a folder that cannot be written is permanent', async (t) => {
    const paths = lockPaths(t);
    const fs = new FsRecorder();
    fs.fail({ op: 'open', code: 'EACCES' });
    await rejectsKind(t, acquireMaildropLock(fs, paths), 'permanent');
  });
});

t.test('lock and scratch files go through the FsLayer', async (t) => {
  const paths = lockPaths(t);
  const fs = new FsRecorder();
  const lock = await acquireMaildropLock(fs, paths);
  const links = fs.ops('link');
  t.equal(links.length, 1);
  t.match(links[0]?.path, /maildird\.lock\.[0-9a-f]+\.tmp$/, 'linked from a private file');
  t.equal(links[0]?.to, paths.lockFile);
  const open = fs.ops('open').at(0);
  t.ok(open && open.seq < (links[0]?.seq ?? 0), 'the private file is written before the link');
  t.ok(fs.ops('write', /\.tmp$/).length >= 1, 'content written to the private file');
  await lock.release();
});

/** An FsLayer whose file times are `offsetMs` off this host's clock (another host's file server). */
function shiftClock(inner: FsLayer, offsetMs: number): FsLayer {
  const shift = (st: Stats): Stats => {
    const copy = Object.assign(Object.create(Object.getPrototypeOf(st) as object) as Stats, st);
    copy.mtimeMs = st.mtimeMs + offsetMs;
    copy.mtime = new Date(copy.mtimeMs);
    return copy;
  };
  return {
    ...inner,
    stat: async (p) => shift(await inner.stat(p)),
    lstat: async (p) => shift(await inner.lstat(p)),
  };
}
