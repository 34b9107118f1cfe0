/**
 * Making a user's Maildir: missing parents, the folder, cur/ new/ tmp/, each
 * new entry durable before anything is acknowledged in it. One rule for the
 * store (a login on a missing folder) and for delivery (the first message to
 * a new user, or a Maildir that lost tmp/ or new/).
 */
import * as path from 'node:path';
import type { FsLayer } from './fs.js';

export interface MaildirOwner {
  readonly uid: number;
  readonly gid: number;
}

export interface CreateMaildirOptions {
  readonly fs: FsLayer;
  /** The user's folder. */
  readonly dir: string;
  /** Given the folder and its subfolders (root runs: DESIGN.md "Files are created ..."); parents stay the process's. */
  readonly owner?: MaildirOwner | undefined;
  /** The tree's root: never created, never walked above. Without it, parents are walked up to 32 levels. */
  readonly root?: string | undefined;
  /** Called once per directory fsync, so the caller can count them. */
  readonly onDirFsync?: (() => void) | undefined;
}

const MAX_PARENT_DEPTH = 32;

/**
 * Parents above a user folder (the `%d` of a `%d/%n` layout) are shared by
 * several users: made 0711 (enterable, not listable). The folder and its
 * subfolders are 0700. Another process creating the same folders at the same
 * time is fine (EEXIST). The folder and its parent are fsynced even when
 * another process made them, since that process's fsync may not have
 * happened yet. Returns whether this call created anything.
 */
export async function createMaildir(options: CreateMaildirOptions): Promise<boolean> {
  const { fs, dir, owner, root } = options;
  const changed = new Set<string>();
  for (const parent of await missingParents(fs, dir, root)) {
    if (await makeDir(fs, parent, 0o711, undefined)) changed.add(path.dirname(parent));
  }
  if (await makeDir(fs, dir, 0o700, owner)) changed.add(path.dirname(dir));
  for (const sub of ['cur', 'new', 'tmp']) {
    if (await makeDir(fs, path.join(dir, sub), 0o700, owner)) changed.add(dir);
  }
  const created = changed.size > 0;
  changed.add(dir);
  changed.add(path.dirname(dir));
  await Promise.all(
    [...changed].map(async (parent) => {
      options.onDirFsync?.();
      await fs.fsyncDir(parent);
    }),
  );
  return created;
}

/** The missing folders above `dir`, outermost first. */
async function missingParents(fs: FsLayer, dir: string, root: string | undefined): Promise<string[]> {
  const missing: string[] = [];
  let p = path.dirname(dir);
  for (let depth = 0; depth < MAX_PARENT_DEPTH; depth++, p = path.dirname(p)) {
    if (p === path.dirname(p)) break;
    if (root !== undefined && (p === root || !p.startsWith(root + path.sep))) break;
    try {
      await fs.stat(p);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.unshift(p);
  }
  return missing;
}

/** mkdir; true when this call created it, false when it already existed. */
async function makeDir(fs: FsLayer, dir: string, mode: number, owner: MaildirOwner | undefined): Promise<boolean> {
  try {
    await fs.mkdir(dir, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  if (owner !== undefined) await fs.chown(dir, owner.uid, owner.gid);
  return true;
}
