/**
 * Remove stale files from a Maildir's `tmp/`. A delivery that crashed
 * between creating `tmp/<unique>` and renaming it leaves the file behind;
 * the Maildir spec (https://cr.yp.to/proto/maildir.html) says a file in
 * tmp/ untouched for 36 hours may be removed, since no delivery takes that
 * long. Run when a maildrop is opened.
 */
import * as path from 'node:path';
import { storageErrorFrom } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { FsLayer } from './fs.js';

/** 36 hours, the Maildir spec's limit for a tmp/ file. */
export const TMP_MAX_AGE_MS = 36 * 60 * 60 * 1000;

/** How many files are looked at in parallel (bounded, so a huge tmp/ cannot flood the thread pool). */
const PARALLEL = 16;

export interface CleanTmpOptions {
  /**
   * Which names are temporary files. Default: every name (a Maildir's
   * tmp/). For a flat folder pass `isFlatTmpName`, so only `.<unique>.tmp`
   * files are considered and messages are never touched.
   */
  readonly match?: (name: string) => boolean;
}

/** A flat folder's in-flight delivery file: `.<unique>.tmp` (dot files are never listed). */
export function isFlatTmpName(name: string): boolean {
  return name.length > 5 && name.startsWith('.') && name.endsWith('.tmp');
}

function isVanished(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Remove regular files in `tmpDir` whose mtime is older than `now - maxAgeMs`
 * and log each at warn (a stale tmp file is a recovered anomaly: some
 * delivery died). Returns how many were removed. A missing `tmpDir` or a
 * file that vanishes meanwhile (another process cleaning, a delivery
 * finishing its rename) is not an error. Failing to remove one file is
 * logged and the rest go on; only an unreadable `tmpDir` throws
 * (StorageError).
 */
export async function cleanTmp(
  fs: FsLayer,
  tmpDir: string,
  now: number | Date,
  maxAgeMs: number = TMP_MAX_AGE_MS,
  logger?: Logger,
  options: CleanTmpOptions = {},
): Promise<number> {
  const cutoff = (typeof now === 'number' ? now : now.getTime()) - maxAgeMs;
  let names: string[];
  try {
    names = await fs.readdir(tmpDir);
  } catch (err) {
    if (isVanished(err)) return 0;
    throw storageErrorFrom(err, `read ${tmpDir}`);
  }
  const candidates = options.match === undefined ? names : names.filter(options.match);
  let removed = 0;
  for (let i = 0; i < candidates.length; i += PARALLEL) {
    const batch = candidates.slice(i, i + PARALLEL);
    const results = await Promise.all(batch.map((name) => removeIfStale(fs, path.join(tmpDir, name), cutoff, logger)));
    removed += results.filter(Boolean).length;
  }
  return removed;
}

async function removeIfStale(fs: FsLayer, file: string, cutoff: number, logger: Logger | undefined): Promise<boolean> {
  try {
    const st = await fs.lstat(file);
    if (!st.isFile() || st.mtimeMs >= cutoff) return false;
    await fs.unlink(file);
    logger?.warn({ file, mtime: st.mtime.toISOString() }, 'removed stale tmp file');
    return true;
  } catch (err) {
    if (isVanished(err)) return false;
    logger?.warn({ file, err }, 'could not remove stale tmp file');
    return false;
  }
}
