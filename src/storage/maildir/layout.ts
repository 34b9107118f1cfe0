/**
 * Where a user's mail lives: the layout template, the guard that keeps every
 * path inside the root (DESIGN invariant 4), the two folder forms, and the
 * fixed names inside a user folder.
 */
import * as path from 'node:path';
import { StorageError, storageErrorFrom } from '../../errors.js';
import type { MailUser } from '../store.js';
import type { FsLayer } from './fs.js';

export const DEFAULT_LAYOUT = '%u';

/**
 * Expand `template` for `user` into an absolute folder inside `root`.
 *
 * `%u` canonical user, `%n` local part (before the last `@`), `%d` domain
 * (after it, else `defaultDomain`), `%h` the passwd home field, `%%` a
 * percent sign. Every expanded value must be a harmless path component (no
 * `/`, `\`, NUL or control characters, not `.` or `..`, not empty); `%h`
 * may hold `/` between such components and may be absolute only when it
 * lies inside the root. Throws StorageError('invalid-name') otherwise, and
 * when the result is not strictly inside the root.
 */
export function resolveUserDir(
  root: string,
  template: string,
  user: MailUser,
  defaultDomain?: string,
): string {
  const absRoot = path.resolve(root);
  const at = user.name.lastIndexOf('@');
  const local = at < 0 ? user.name : user.name.slice(0, at);
  const domain = at < 0 ? defaultDomain : user.name.slice(at + 1);
  let expanded = '';
  let isAbsolute = false;
  for (let i = 0; i < template.length; i++) {
    const c = template.charAt(i);
    if (c !== '%') {
      expanded += c;
      continue;
    }
    const key = template.charAt(++i);
    switch (key) {
      case 'u':
        expanded += component(user.name, 'user name');
        break;
      case 'n':
        expanded += component(local, 'local part');
        break;
      case 'd':
        expanded += component(domain, 'domain');
        break;
      case 'h': {
        const home = homePath(user.home, absRoot);
        if (path.isAbsolute(home)) {
          if (expanded.length > 0) throw invalid(`absolute home for ${user.name} is not at the start of the layout`);
          isAbsolute = true;
        }
        expanded += home;
        break;
      }
      case '%':
        expanded += '%';
        break;
      default:
        throw invalid(`layout template has unknown variable %${key}`);
    }
  }
  if (expanded.length === 0) throw invalid(`empty folder for ${JSON.stringify(user.name)}`);
  const dir = isAbsolute ? path.resolve(expanded) : path.resolve(absRoot, expanded);
  if (!isStrictlyInside(absRoot, dir)) throw invalid(`folder for ${JSON.stringify(user.name)} is outside the root`);
  return dir;
}

/** True when `child` is below `parent` (not equal to it), both absolute and normalised. */
export function isStrictlyInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel.length > 0 && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function invalid(message: string): StorageError {
  return new StorageError('invalid-name', message);
}

/** A value that becomes exactly one path component. */
function component(value: string | undefined, what: string): string {
  if (value === undefined || value.length === 0) throw invalid(`empty ${what}`);
  if (value === '.' || value === '..') throw invalid(`${what} ${JSON.stringify(value)} is not a folder name`);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === 0x2f /* / */ || code === 0x5c /* \ */) {
      throw invalid(`${what} ${JSON.stringify(value)} has a character that cannot be in a folder name`);
    }
  }
  return value;
}

/** `%h`: components joined by `/`; absolute only inside the root. */
function homePath(home: string | undefined, absRoot: string): string {
  if (home === undefined || home.length === 0) throw invalid('empty home');
  const isAbs = home.startsWith('/');
  const parts = home.split('/').filter((part) => part !== '');
  if (parts.length === 0) throw invalid(`home ${JSON.stringify(home)} is not a folder`);
  for (const part of parts) component(part, 'home component');
  const joined = parts.join('/');
  if (!isAbs) return joined;
  const abs = `/${joined}`;
  if (!isStrictlyInside(absRoot, path.resolve(abs)) && path.resolve(abs) !== absRoot) {
    throw invalid(`home ${JSON.stringify(home)} is outside the root`);
  }
  return abs;
}

/**
 * Refuse `dir` when, after following symlinks, it is not inside the root:
 * a symlink (the folder itself or any ancestor) pointing out of the root,
 * or a dangling symlink that a later mkdir would trip over. A folder that
 * does not exist yet is judged by its deepest existing ancestor.
 */
export async function ensureInsideRoot(fs: FsLayer, root: string, dir: string): Promise<void> {
  let realRoot: string;
  try {
    realRoot = await fs.realpath(path.resolve(root));
  } catch (err) {
    throw storageErrorFrom(err, `root ${root}`);
  }
  let probe = path.resolve(dir);
  let isTarget = true;
  let lookAgain = 3;
  for (let depth = 0; depth < 256; depth++) {
    let real: string;
    try {
      real = await fs.realpath(probe);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, `resolve ${probe}`);
      // ENOENT: missing, or a dangling symlink (lstat sees it). lstat also sees
      // a folder a concurrent first delivery made after our realpath: resolve
      // it again before calling it a dangling link (found by test/fuzz/smtp-sessions).
      if (await exists(fs, probe)) {
        if (lookAgain-- > 0) continue;
        throw invalid(`${probe} is a dangling symbolic link`);
      }
      const parent = path.dirname(probe);
      if (parent === probe) throw invalid(`${dir} has no existing ancestor`);
      probe = parent;
      isTarget = false;
      continue;
    }
    const isOk = isTarget ? isStrictlyInside(realRoot, real) : real === realRoot || isStrictlyInside(realRoot, real);
    if (!isOk) throw invalid(`${dir} resolves outside the root`);
    return;
  }
  throw invalid(`${dir} is nested too deeply`);
}

async function exists(fs: FsLayer, p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export type FolderForm = 'maildir' | 'flat' | 'missing';

/**
 * A user folder is a Maildir iff it has `cur/`, `new/` or `tmp/`; an
 * existing folder without them is a flat folder of `*.eml` files; no folder
 * at all is 'missing'. A user "folder" that is a plain file is a broken tree:
 * StorageError('permanent').
 */
export async function detectForm(fs: FsLayer, dir: string): Promise<FolderForm> {
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory()) throw new StorageError('permanent', `${dir} is not a folder`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw storageErrorFrom(err, `stat ${dir}`);
  }
  const checks = await Promise.all(
    ['cur', 'new', 'tmp'].map(async (sub) => {
      try {
        return (await fs.stat(path.join(dir, sub))).isDirectory();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return false;
        throw storageErrorFrom(err, `stat ${dir}/${sub}`);
      }
    }),
  );
  return checks.some(Boolean) ? 'maildir' : 'flat';
}

export interface MaildirPaths {
  readonly dir: string;
  readonly cur: string;
  readonly new: string;
  readonly tmp: string;
  /** Maildir++ Trash folder (`.Trash`); also the flat form's Trash. */
  readonly trashDir: string;
  readonly trashCur: string;
  readonly trashNew: string;
  readonly trashTmp: string;
  /** POP3 session lock (DESIGN "Exclusive access"). */
  readonly lockFile: string;
  /** Batch journal (DESIGN "The batch journal"). */
  readonly journalFile: string;
  /** Maildir++ quota file. */
  readonly maildirsize: string;
  /** Rebuildable listing cache (listing-cache.ts); the tree stays the only truth. */
  readonly listingCache: string;
  /** Dovecot's UID list, read (never written) for `uidlMode: 'dovecot'`. */
  readonly dovecotUidlist: string;
}

export function maildirPaths(dir: string): MaildirPaths {
  const trashDir = path.join(dir, '.Trash');
  return {
    dir,
    cur: path.join(dir, 'cur'),
    new: path.join(dir, 'new'),
    tmp: path.join(dir, 'tmp'),
    trashDir,
    trashCur: path.join(trashDir, 'cur'),
    trashNew: path.join(trashDir, 'new'),
    trashTmp: path.join(trashDir, 'tmp'),
    lockFile: path.join(dir, 'maildird.lock'),
    journalFile: path.join(dir, 'maildird-batch.journal'),
    maildirsize: path.join(dir, 'maildirsize'),
    listingCache: path.join(dir, 'maildird-listing.cache'),
    dovecotUidlist: path.join(dir, 'dovecot-uidlist'),
  };
}
