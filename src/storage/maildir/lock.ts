/**
 * The maildrop lock (DESIGN "Exclusive access"): `<userdir>/maildird.lock`,
 * held by one POP3 session from login to the end of UPDATE, across
 * processes and hosts sharing the tree.
 *
 * Creating. The lock's content (host, pid, process start time, boot id and
 * a random token) is written to a private file created with O_EXCL (0600)
 * beside the lock, which is then link()ed to `maildird.lock`. link() fails
 * with EEXIST when the name is taken, so this is as exclusive as an O_EXCL
 * create of the lock itself, and better in two ways: nobody ever sees a
 * lock without its content (an O_EXCL create is followed by a separate
 * write), and on NFS, where a retransmitted LINK can report EEXIST (or
 * anything else) although it happened, the link count of our private file
 * says what really happened (the method of liblockfile and procmail; see
 * DESIGN's NFS note: look at the files before deciding).
 *
 * Staleness. A lock is stale when its mtime is more than `staleMs` (120 s)
 * behind the file system's clock, read as the mtime of a probe file just
 * created beside it (hosts sharing a tree disagree about time; the server
 * stamps both files), or at once when it names this host and a process that
 * no longer exists, or that has another start time (pid reused) or ran in
 * an earlier boot. The holder refreshes it every `refreshMs` (30 s) by
 * rewriting its content in place: the file system then stamps the mtime
 * with its own clock. (utimes() with explicit times would stamp ours; the
 * "now" form of utimes, which would not, cannot be expressed in Node.)
 *
 * Taking over a stale lock is serialised by a second lock,
 * `maildird.lock.takeover`, made and judged the same way: its holder
 * re-reads the lock, checks it is still the one judged stale (same inode
 * and same content), renames it to a unique name, checks again what it
 * renamed (putting back anything else), removes it and creates its own.
 * Many processes racing for one stale lock therefore end with exactly one
 * holder; the others are told 'in-use'. The one window left: a stale
 * lock's owner, frozen for two minutes, releasing it in the instant
 * between the taker's check and its rename while a third process creates
 * a new lock in the moment before the rename is undone. A holder can check
 * with assertHeld() that its lock is still its own before it commits.
 *
 * Scratch names beside the lock all start with `maildird.lock.` (`.tmp`,
 * `.probe`, `.stale`, `.release`, `.takeover`); none of them ends in `.eml`
 * or sits in cur/ or new/, so no scan lists them. Only a process killed in
 * the middle of making a lock leaves one behind; `maildird check` can
 * report them.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
// /proc is not a mail file: reading it directly does not bypass the FsLayer's purpose.
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { StorageError, storageErrorFrom } from '../../errors.js';
import { silentLogger, type Logger } from '../../log/logger.js';
import type { FsLayer } from './fs.js';
import type { MaildirPaths } from './layout.js';

export const DEFAULT_LOCK_REFRESH_MS = 30_000;
export const DEFAULT_LOCK_STALE_MS = 120_000;

/** Bounded retries when the lock changes hands while we look at it. */
const MAX_ATTEMPTS = 8;
/** A lock file is a few hundred bytes; anything much bigger is not ours to parse. */
const MAX_LOCK_BYTES = 4096;

/** Who holds a lock, as written in the lock file. */
export interface LockOwner {
  readonly host: string;
  readonly pid: number;
  /**
   * The process start time: on Linux the `starttime` field of
   * /proc/<pid>/stat (clock ticks since boot), elsewhere `ms:<epoch ms>`.
   * With `boot`, it tells a live owner from a reused pid.
   */
  readonly start: string;
  /** Linux boot id (/proc/sys/kernel/random/boot_id), when known. */
  readonly boot?: string;
  /** Random per lock: tells this lock from any later one with the same owner. */
  readonly token: string;
}

/** How the lock judges whether a process still lives. Injectable for tests on other platforms. */
export interface ProcessProbe {
  /** This process's start time and boot id, in the form written to lock files. */
  self(): Promise<{ start: string; boot?: string }>;
  /**
   * Whether `owner` (a process on this host) still runs: false when the pid
   * is gone, belongs to a process with another start time, or the boot id
   * differs.
   */
  isAlive(owner: LockOwner): Promise<boolean>;
}

export interface LockOptions {
  /** Host name written into the lock and compared with locks found; default os.hostname(). */
  readonly hostname?: string;
  /** How often the holder refreshes the lock; default 30 s. */
  readonly refreshMs?: number;
  /** Age (by the file system's clock) after which an unrefreshed lock is stale; default 120 s. */
  readonly staleMs?: number;
  readonly logger?: Logger;
  readonly processProbe?: ProcessProbe;
}

export interface MaildropLock {
  /** The lock file. */
  readonly path: string;
  /** What this lock wrote into it. */
  readonly owner: LockOwner;
  /**
   * Rewrite the lock so its mtime is the file system's now. Runs on a timer
   * every `refreshMs` (unref'd: it never keeps the process alive). Logs at
   * error level, and does not touch the file, when the lock is no longer
   * ours (it was judged stale and taken over).
   */
  refresh(): Promise<void>;
  /** Throws StorageError('temporary') unless the lock file is still this lock. */
  assertHeld(): Promise<void>;
  /**
   * Stop refreshing and remove the lock file if it is still this lock.
   * Idempotent; never rejects (a lock it cannot remove goes stale).
   */
  release(): Promise<void>;
}

/**
 * Lock the maildrop at `paths`. Rejects with StorageError('in-use', 'maildrop
 * is locked by <host> pid <pid>') while a live lock is held anywhere
 * (including by this process), and with 'temporary'/'permanent' on I/O
 * errors. A stale lock is taken over (logged at warn).
 */
export async function acquireMaildropLock(
  fs: FsLayer,
  paths: Pick<MaildirPaths, 'dir' | 'lockFile'>,
  options: LockOptions = {},
): Promise<MaildropLock> {
  const ctx: LockContext = {
    fs,
    logger: options.logger ?? silentLogger(),
    staleMs: options.staleMs ?? DEFAULT_LOCK_STALE_MS,
    host: options.hostname ?? osHostname(),
    probe: options.processProbe ?? linuxProcessProbe,
  };
  const self = await ctx.probe.self();
  const owner: LockOwner = {
    host: ctx.host,
    pid: process.pid,
    start: self.start,
    ...(self.boot === undefined ? {} : { boot: self.boot }),
    token: randomBytes(12).toString('hex'),
  };
  const content = Buffer.from(`${JSON.stringify(owner)}\n`, 'utf8');
  const lockFile = paths.lockFile;

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await createExclusive(fs, lockFile, content, owner.token)) {
      return new HeldLock(ctx, lockFile, owner, content, options.refreshMs ?? DEFAULT_LOCK_REFRESH_MS);
    }
    const found = await inspect(fs, lockFile);
    if (found === undefined) continue; // released while we looked: try again
    const verdict = await judge(ctx, found);
    if (verdict === undefined) throw inUse(found);
    const outcome = await takeOver(ctx, lockFile, found, verdict, owner, content);
    if (outcome === 'taken') {
      return new HeldLock(ctx, lockFile, owner, content, options.refreshMs ?? DEFAULT_LOCK_REFRESH_MS);
    }
  }
  throw new StorageError('temporary', 'maildrop lock keeps changing hands: try again');
}

interface LockContext {
  readonly fs: FsLayer;
  readonly logger: Logger;
  readonly staleMs: number;
  readonly host: string;
  readonly probe: ProcessProbe;
}

/** A lock file as found: identity (device, inode, bytes) and age. */
interface FoundLock {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly mtimeMs: number;
  readonly raw: Buffer;
  /** undefined when the content is not a maildird lock (torn, foreign, empty). */
  readonly owner: LockOwner | undefined;
}

function inUse(found: FoundLock): StorageError {
  return found.owner === undefined
    ? new StorageError('in-use', 'maildrop is locked by another session (unreadable lock file)')
    : new StorageError('in-use', `maildrop is locked by ${found.owner.host} pid ${found.owner.pid}`);
}

class HeldLock implements MaildropLock {
  readonly path: string;
  readonly owner: LockOwner;
  readonly #ctx: LockContext;
  readonly #content: Buffer;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #released: Promise<void> | undefined;

  constructor(ctx: LockContext, path: string, owner: LockOwner, content: Buffer, refreshMs: number) {
    this.#ctx = ctx;
    this.path = path;
    this.owner = owner;
    this.#content = content;
    this.#timer = setInterval(() => {
      void this.refresh();
    }, Math.max(1, refreshMs));
    this.#timer.unref();
  }

  refresh(): Promise<void> {
    if (this.#released !== undefined) return Promise.resolve();
    // One refresh at a time: a slow file system must not pile them up.
    this.#refreshing ??= this.#rewrite().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #rewrite(): Promise<void> {
    const { fs, logger } = this.#ctx;
    let handle;
    try {
      handle = await fs.open(this.path, constants.O_RDWR);
    } catch (err) {
      logger.error({ lock: this.path, err }, 'cannot refresh maildrop lock');
      return;
    }
    try {
      const found = await handle.readFile();
      if (!found.equals(this.#content)) {
        logger.error({ lock: this.path, owner: parseOwner(found) }, 'maildrop lock was taken over by another session');
        return;
      }
      // Same bytes at the same place: the content stays whole even if we die
      // mid-write, and the file system stamps the mtime with its own clock.
      await handle.write(this.#content, 0, this.#content.length, 0);
    } catch (err) {
      logger.error({ lock: this.path, err }, 'cannot refresh maildrop lock');
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async assertHeld(): Promise<void> {
    if (this.#released !== undefined) throw new StorageError('temporary', 'maildrop lock already released');
    let found: Buffer;
    try {
      found = await this.#ctx.fs.readFile(this.path);
    } catch (err) {
      throw new StorageError('temporary', `maildrop lock lost: ${storageErrorFrom(err, this.path).message}`, {
        cause: err,
      });
    }
    if (!found.equals(this.#content)) {
      const other = parseOwner(found);
      throw new StorageError(
        'temporary',
        other === undefined
          ? 'maildrop lock lost to another session'
          : `maildrop lock lost to ${other.host} pid ${other.pid}`,
      );
    }
  }

  release(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#released ??= (async () => {
      await this.#refreshing?.catch(() => undefined);
      try {
        await removeIfContent(this.#ctx, this.path, this.#content, 'release');
      } catch (err) {
        this.#ctx.logger.error({ lock: this.path, err }, 'cannot remove maildrop lock; it will go stale');
      }
    })();
    return this.#released;
  }
}

/**
 * Make `target` hold `content`, atomically and only if the name is free:
 * write a private O_EXCL file and link() it to `target`. Returns false when
 * the name is taken. After any link() error the private file's link count
 * says whether the link happened (NFS).
 */
async function createExclusive(fs: FsLayer, target: string, content: Buffer, token: string): Promise<boolean> {
  const tmp = scratchTmpName(target, token);
  let handle;
  try {
    handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    throw storageErrorFrom(err, `create ${tmp}`);
  }
  try {
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    try {
      await fs.link(tmp, target);
      return true;
    } catch (err) {
      let links = 0;
      try {
        links = (await fs.lstat(tmp)).nlink;
      } catch {
        // cannot tell: judge by the error alone
      }
      if (links >= 2) return true;
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw storageErrorFrom(err, `link ${target}`);
    }
  } catch (err) {
    throw storageErrorFrom(err, `create ${target}`);
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
}

/**
 * The private file's name: `<lock>.<pid as 8 hex digits><token>.tmp`. The
 * pid in the name lets the next login remove one torn by a kill between
 * its create and its write (empty, so no owner inside to judge; see
 * leftovers.ts).
 */
export function scratchTmpName(target: string, token: string): string {
  return `${target}.${process.pid.toString(16).padStart(8, '0')}${token}.tmp`;
}

/** The pid in a scratch .tmp name made by scratchTmpName (32 hex digits), else undefined. */
export function scratchTmpPid(name: string): number | undefined {
  const m = /^maildird\.lock\.([0-9a-f]{8})[0-9a-f]{24}\.tmp$/.exec(name);
  if (m === null) return undefined;
  const pid = Number.parseInt(m[1] ?? '', 16);
  return pid > 0 ? pid : undefined;
}

/** Read a lock file; undefined when it does not exist. */
async function inspect(fs: FsLayer, path: string): Promise<FoundLock | undefined> {
  try {
    const st = await fs.lstat(path);
    const raw = st.size > MAX_LOCK_BYTES ? Buffer.alloc(0) : await fs.readFile(path);
    return { path, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, raw, owner: parseOwner(raw) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storageErrorFrom(err, `read ${path}`);
  }
}

function isSameLock(a: FoundLock, b: FoundLock): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.raw.equals(b.raw);
}

/** Parse lock content; undefined for anything that is not a well-formed maildird lock. */
export function parseOwner(raw: Buffer): LockOwner | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const { host, pid, start, boot, token } = v;
  if (typeof host !== 'string' || typeof start !== 'string' || typeof token !== 'string') return undefined;
  // A pid of 0 or below would make kill() probe process groups: never trust one.
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (boot !== undefined && typeof boot !== 'string') return undefined;
  return { host, pid, start, ...(boot === undefined ? {} : { boot }), token };
}

/** Why a found lock is stale, or undefined when it is live. */
async function judge(ctx: LockContext, found: FoundLock): Promise<string | undefined> {
  const owner = found.owner;
  if (owner !== undefined && owner.host === ctx.host && !(await ctx.probe.isAlive(owner))) {
    return `its owner, pid ${owner.pid} on this host, is gone`;
  }
  const now = await fileSystemNow(ctx.fs, found.path);
  const age = now - found.mtimeMs;
  if (age > ctx.staleMs) return `not refreshed for ${Math.round(age / 1000)} s by the file system's clock`;
  return undefined;
}

/** The file system's clock: the mtime of a file created beside `near` just now. */
async function fileSystemNow(fs: FsLayer, near: string): Promise<number> {
  const probe = `${near}.${randomBytes(8).toString('hex')}.probe`;
  try {
    const handle = await fs.open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.close();
    return (await fs.lstat(probe)).mtimeMs;
  } catch (err) {
    throw storageErrorFrom(err, `probe the file system clock at ${probe}`);
  } finally {
    await fs.unlink(probe).catch(() => undefined);
  }
}

/**
 * Take over the stale lock `found` under the takeover lock. Returns 'taken'
 * when the lock is now ours, 'retry' when the situation changed (look
 * again); throws 'in-use' when another process is taking it over.
 */
async function takeOver(
  ctx: LockContext,
  lockFile: string,
  found: FoundLock,
  reason: string,
  owner: LockOwner,
  content: Buffer,
): Promise<'taken' | 'retry'> {
  const { fs, logger } = ctx;
  const mutex = `${lockFile}.takeover`;
  if (!(await createExclusive(fs, mutex, content, owner.token))) {
    const other = await inspect(fs, mutex);
    if (other === undefined) return 'retry';
    const mutexReason = await judge(ctx, other);
    if (mutexReason === undefined) throw inUse(found); // someone else is taking it over right now
    if (await removeIfSame(ctx, other, 'stale')) {
      logger.warn({ lock: mutex, owner: other.owner, reason: mutexReason }, 'removed stale maildrop takeover lock');
    }
    return 'retry';
  }
  try {
    const again = await inspect(fs, lockFile);
    if (again === undefined || !isSameLock(again, found)) return 'retry';
    if (!(await removeIfSame(ctx, again, 'stale'))) return 'retry';
    logger.warn({ lock: lockFile, owner: found.owner, reason }, 'took over stale maildrop lock');
    return (await createExclusive(fs, lockFile, content, owner.token)) ? 'taken' : 'retry';
  } finally {
    try {
      await removeIfContent(ctx, mutex, content, 'release');
    } catch (err) {
      logger.error({ lock: mutex, err }, 'cannot remove maildrop takeover lock; it will go stale');
    }
  }
}

/**
 * Remove the lock `found` if the file at its path is still that lock:
 * rename it to a unique name (only one process can get it), check that
 * what was renamed is `found`, unlink it; put back anything else.
 */
async function removeIfSame(ctx: LockContext, found: FoundLock, suffix: string): Promise<boolean> {
  return removeChecked(ctx, found.path, suffix, (got) => isSameLock(got, found));
}

/** Remove the lock at `path` if it holds exactly `content` (ours). */
async function removeIfContent(ctx: LockContext, path: string, content: Buffer, suffix: string): Promise<boolean> {
  // Look before moving: a lock that is not ours (any more) is left alone,
  // without even a moment's gap at its name.
  const current = await inspect(ctx.fs, path);
  if (current === undefined) return false;
  if (!current.raw.equals(content)) {
    ctx.logger.warn({ lock: path, owner: current.owner }, 'maildrop lock is no longer ours: left alone');
    return false;
  }
  return removeChecked(ctx, path, suffix, (got) => got.raw.equals(content));
}

async function removeChecked(
  ctx: LockContext,
  path: string,
  suffix: string,
  isExpected: (got: FoundLock) => boolean,
): Promise<boolean> {
  const { fs, logger } = ctx;
  const aside = `${path}.${randomBytes(8).toString('hex')}.${suffix}`;
  try {
    await fs.rename(path, aside);
  } catch (err) {
    // NFS: the rename may have happened although it reported an error.
    const moved = await inspect(fs, aside).catch(() => undefined);
    if (moved === undefined) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw storageErrorFrom(err, `rename ${path}`);
    }
  }
  const got = await inspect(fs, aside);
  if (got === undefined) return false;
  if (isExpected(got)) {
    await fs.unlink(aside).catch((err: unknown) => {
      logger.warn({ file: aside, err }, 'cannot remove old maildrop lock');
    });
    return true;
  }
  // Not the lock we judged: it changed hands in between. Put it back.
  try {
    await fs.link(aside, path);
  } catch (err) {
    const back = await inspect(fs, path).catch(() => undefined);
    if (back === undefined || !isSameLock(back, got)) {
      logger.error({ lock: path, owner: got.owner, err }, 'could not put back a live maildrop lock');
    }
  }
  await fs.unlink(aside).catch(() => undefined);
  return false;
}

/**
 * Linux: start time from /proc/<pid>/stat (field 22, clock ticks since
 * boot) and the boot id; elsewhere the start time in epoch ms and a bare
 * existence check with signal 0.
 */
export const linuxProcessProbe: ProcessProbe = {
  async self() {
    const start = (await procStartTime('self')) ?? `ms:${Math.round(Date.now() - process.uptime() * 1000)}`;
    const boot = await bootId();
    return boot === undefined ? { start } : { start, boot };
  },
  async isAlive(owner) {
    if (owner.pid === process.pid) {
      const self = await linuxProcessProbe.self();
      return self.start === owner.start && (owner.boot === undefined || owner.boot === self.boot);
    }
    const boot = await bootId();
    if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return false;
    try {
      process.kill(owner.pid, 0);
    } catch (err) {
      // EPERM: it exists but belongs to another user.
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    }
    const start = await procStartTime(String(owner.pid));
    // Start times of the same form are comparable; otherwise all we know is that the pid exists.
    if (start !== undefined && !owner.start.startsWith('ms:') && start !== owner.start) return false;
    return true;
  },
};

let cachedBootId: Promise<string | undefined> | undefined;

function bootId(): Promise<string | undefined> {
  cachedBootId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  );
  return cachedBootId;
}

/** Field 22 of /proc/<pid>/stat; the name field (2) may hold spaces and parentheses, so split after the last ')'. */
async function procStartTime(pid: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const start = fields[19];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}
