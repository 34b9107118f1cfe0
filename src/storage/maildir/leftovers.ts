/**
 * What a maildird process killed mid-work leaves beside a maildrop, and
 * whose owner is provably gone, removed when the maildrop is next opened
 * (under its lock). Found by the crash harness (issue 6): after SIGKILL
 * and a restart, these files stayed although nothing could ever finish
 * them:
 *
 * - `tmp/<seconds>.M<usec>P<pid>Q<n>.<host>` (a flat folder's
 *   `.<unique>.tmp`): a delivery that never reached its rename. The
 *   Maildir spec's 36-hour rule (tmp-cleanup.ts) removes any such file
 *   eventually; a name in our own unique form, with this host and a pid
 *   that no longer runs, can go at once, since only its writer could
 *   rename it. Other writers' names (Postfix, Dovecot) and other hosts'
 *   are left to the 36-hour rule.
 * - `maildird.lock.<token>.tmp`, `.probe`, `.stale`, `.release`: scratch
 *   names of lock.ts. The `.tmp` and the renamed-aside `.stale`/`.release`
 *   hold a lock owner (host, pid, start time): gone when that owner is
 *   (judged like a lock, by the process probe). A `.tmp` torn before its
 *   content was written names its pid (lock.ts scratchTmpName): gone when
 *   no such process runs here. (On a tree shared between hosts, another
 *   host's create in that same instant would lose its file and answer a
 *   temporary error instead of in-use: it could not have had the lock
 *   we hold anyway.) A `.probe` (or anything
 *   unreadable) goes once it is older than the lock's stale time by the
 *   file system's clock (our lock file was just written: its mtime is
 *   that clock). `maildird.lock.takeover` is a lock itself and judged by
 *   lock.ts.
 * - `maildird-listing.cache.<pid>.tmp`: a cache save cut short. Cache
 *   saves run under the maildrop lock, which we hold, so no live session
 *   writes one now; the pid check keeps the rule safe even so.
 *
 * A pid that runs again (reused) keeps its files: the 36-hour rule is the
 * fallback. Errors are logged and never fail the login.
 */
import * as path from 'node:path';
import type { Logger } from '../../log/logger.js';
import type { FsLayer } from './fs.js';
import type { MaildirPaths } from './layout.js';
import { sanitizeHost } from './filename.js';
import { parseOwner, scratchTmpPid, type ProcessProbe } from './lock.js';
import { isFlatTmpName } from './tmp-cleanup.js';

/** A lock owner or scratch file is a few hundred bytes (as lock.ts). */
const MAX_SCRATCH_BYTES = 4096;

export interface LeftoverOptions {
  /** This host as lock files name it (os.hostname() or the store's hostname option). */
  readonly host: string;
  readonly form: 'maildir' | 'flat';
  /** Judges lock owners (pid, start time, boot id). */
  readonly probe: ProcessProbe;
  /** Whether a bare pid runs on this host; default: signal 0 (EPERM counts as alive). */
  readonly isPidAlive?: (pid: number) => boolean;
  /** Lock stale time (ms): scratch files without an owner older than this go. */
  readonly staleMs: number;
  readonly logger: Logger;
}

/** Our unique names (filename.ts UniqueNameGenerator): `<seconds>.M<usec>P<pid>Q<n>.<host>`. */
const UNIQUE = /^\d+\.M\d+P(\d+)Q\d+\.(.+)$/;
const LOCK_SCRATCH = /^maildird\.lock\.[0-9a-f]+\.(tmp|probe|stale|release)$/;
const CACHE_TMP = /^maildird-listing\.cache\.(\d+)\.tmp$/;

export function defaultIsPidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true; // never probe process groups; keep the file
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The pid in one of our unique names when it carries `host`, else undefined. */
export function ownPidOf(name: string, host: string): number | undefined {
  const m = UNIQUE.exec(name);
  if (m === null || m[2] !== host) return undefined;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Remove the leftovers described above; returns how many went. Call with the maildrop lock held. */
export async function sweepLeftovers(fs: FsLayer, paths: MaildirPaths, options: LeftoverOptions): Promise<number> {
  const isAlive = options.isPidAlive ?? defaultIsPidAlive;
  const uniqueHost = sanitizeHost(options.host);
  let removed = 0;
  const remove = async (file: string, why: string): Promise<void> => {
    try {
      const st = await fs.lstat(file);
      if (!st.isFile()) return;
      await fs.unlink(file);
      removed++;
      options.logger.warn({ file, why }, 'removed a leftover of a process that died');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') options.logger.warn({ file, err }, 'could not remove a leftover');
    }
  };

  const tmpDir = options.form === 'maildir' ? paths.tmp : paths.dir;
  for (const name of await names(fs, tmpDir, options.logger)) {
    const unique = options.form === 'maildir' ? name : isFlatTmpName(name) ? name.slice(1, -4) : undefined;
    if (unique === undefined) continue;
    const pid = ownPidOf(unique, uniqueHost);
    if (pid !== undefined && !isAlive(pid)) await remove(path.join(tmpDir, name), `delivery of pid ${pid} never finished`);
  }

  const userNames = await names(fs, paths.dir, options.logger);
  let fsNow: number | undefined;
  for (const name of userNames) {
    const file = path.join(paths.dir, name);
    const cache = CACHE_TMP.exec(name);
    if (cache !== null) {
      const pid = Number(cache[1]);
      if (pid !== process.pid && !isAlive(pid)) await remove(file, `cache save of pid ${pid} never finished`);
      continue;
    }
    if (!LOCK_SCRATCH.test(name)) continue;
    try {
      const st = await fs.lstat(file);
      if (!st.isFile()) continue;
      const owner = st.size > MAX_SCRATCH_BYTES ? undefined : parseOwner(await fs.readFile(file));
      if (owner !== undefined && owner.host === options.host) {
        if (!(await options.probe.isAlive(owner))) await remove(file, `lock scratch of pid ${owner.pid}, which is gone`);
        continue;
      }
      // Torn (killed between create and write): the pid in the name says whether its writer lives.
      const pid = owner === undefined ? scratchTmpPid(name) : undefined;
      if (pid !== undefined && pid !== process.pid && !isAlive(pid)) {
        await remove(file, `empty lock scratch of pid ${pid}, which is gone`);
        continue;
      }
      fsNow ??= (await fs.lstat(paths.lockFile)).mtimeMs;
      if (fsNow - st.mtimeMs > options.staleMs) await remove(file, 'lock scratch older than the stale time');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') options.logger.warn({ file, err }, 'could not judge a lock scratch file');
    }
  }
  return removed;
}

async function names(fs: FsLayer, dir: string, logger: Logger): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') logger.warn({ dir, err }, 'could not look for leftovers');
    return [];
  }
}
