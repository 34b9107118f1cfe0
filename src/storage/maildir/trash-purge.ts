/**
 * Trash retention for one user folder (MailStore.purgeTrash): unlink the
 * messages that were moved into Trash before a given time.
 *
 * "Moved into Trash" is the file's ctime. A trash-mode QUIT moves with
 * link() then unlink() (journal.ts), and link() sets the inode's ctime, so
 * ctime is when the message reached Trash, whatever its mtime (the arrival
 * time) says. Anything else that touches the inode later (a chmod, a
 * restore by rsync) only makes it look younger: retention errs towards
 * keeping mail.
 *
 * Where: `.Trash/cur/` and `.Trash/new/` of a Maildir (Maildir++), the
 * `.Trash/` folder's `*.eml` files of a flat folder. Dot files, `tmp/`,
 * Dovecot's index files, folders and symlinks are never touched. Each
 * folder that lost a file is fsynced before the call resolves. With Trash
 * counted in the quota, the Maildir++ `maildirsize` gets the negative
 * delta (best effort, as the batch does).
 */
import { storageErrorFrom } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { TrashPurgeResult } from '../store.js';
import type { FsLayer } from './fs.js';
import type { MaildirPaths } from './layout.js';
import { recordDelta } from './quota.js';

export interface TrashPurgeOptions {
  readonly fs: FsLayer;
  readonly paths: MaildirPaths;
  readonly form: 'maildir' | 'flat';
  /** Files whose ctime is before this (ms since the epoch) are purged. */
  readonly olderThanMs: number;
  /** The quota counts Trash: record what the purge frees. */
  readonly countTrashInQuota: boolean;
  readonly logger: Logger;
}

/** lstat calls in flight at once: a big Trash is read in slices, not with 100,000 promises. */
const STAT_SLICE = 32;

export async function purgeTrashFolder(options: TrashPurgeOptions): Promise<TrashPurgeResult> {
  const { paths, form } = options;
  const folders: readonly { readonly dir: string; readonly keep: (name: string) => boolean }[] =
    form === 'maildir'
      ? [
          { dir: paths.trashCur, keep: isMessageName },
          { dir: paths.trashNew, keep: isMessageName },
        ]
      : [{ dir: paths.trashDir, keep: (name) => isMessageName(name) && name.endsWith('.eml') }];
  let purged = 0;
  let bytes = 0;
  try {
    for (const { dir, keep } of folders) {
      const result = await purgeOne(options, dir, keep);
      purged += result.purged;
      bytes += result.bytes;
    }
  } finally {
    if (purged > 0) options.logger.info({ dir: paths.dir, purged, bytes }, 'trash purged');
    if (purged > 0 && options.countTrashInQuota) {
      try {
        await recordDelta(options.fs, paths.dir, -bytes, -purged);
      } catch (err) {
        options.logger.warn({ dir: paths.dir, err }, 'cannot record quota delta for the trash purge');
      }
    }
  }
  return { purged, bytes };
}

function isMessageName(name: string): boolean {
  return name.length > 0 && !name.startsWith('.');
}

async function purgeOne(options: TrashPurgeOptions, dir: string, keep: (name: string) => boolean): Promise<TrashPurgeResult> {
  const { fs } = options;
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter(keep);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { purged: 0, bytes: 0 };
    throw storageErrorFrom(err, `read ${dir}`);
  }
  let purged = 0;
  let bytes = 0;
  try {
    for (let i = 0; i < names.length; i += STAT_SLICE) {
      const slice = names.slice(i, i + STAT_SLICE);
      const stats = await Promise.all(
        slice.map(async (name) => {
          try {
            return await fs.lstat(`${dir}/${name}`);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // gone meanwhile
            throw storageErrorFrom(err, `stat ${dir}/${name}`);
          }
        }),
      );
      for (const [j, st] of stats.entries()) {
        if (st === undefined || !st.isFile() || !(st.ctimeMs < options.olderThanMs)) continue;
        try {
          await fs.unlink(`${dir}/${slice[j] ?? ''}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // an operator or another sweeper was first
          throw storageErrorFrom(err, `unlink ${dir}/${slice[j] ?? ''}`);
        }
        purged++;
        bytes += st.size;
      }
    }
  } finally {
    // What was unlinked stays unlinked, and durably so, even when a later file failed.
    if (purged > 0) await fs.fsyncDir(dir).catch((err: unknown) => Promise.reject(storageErrorFrom(err, `fsync ${dir}`)));
  }
  return { purged, bytes };
}
