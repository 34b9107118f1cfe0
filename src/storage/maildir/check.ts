/**
 * `maildird check`: a read-only walk of a tree (fast-glob) that reports
 * users, message counts and bytes, and what an operator should look at:
 * files that are not listed (unparsable names, folders, symlinks), base
 * names found twice (DESIGN "Identity": a broken tree), stale tmp files
 * (over 36 hours, the Maildir spec's limit), leftover batch journals
 * (rolled forward at the next login or start) and locks, live or stale.
 * It takes no lock and changes nothing.
 */
import * as path from 'node:path';
import { hostname as osHostname } from 'node:os';
import type { Stats } from 'node:fs';
import fg from 'fast-glob';
import { storageErrorFrom } from '../../errors.js';
import { DEFAULT_INFO_SEPARATORS, parseMaildirName } from './filename.js';
import { nodeFs, type FsLayer } from './fs.js';
import { DEFAULT_LAYOUT, detectForm, ensureInsideRoot, maildirPaths, type MaildirPaths } from './layout.js';
import { DEFAULT_LOCK_STALE_MS, linuxProcessProbe, parseOwner, type LockOwner, type ProcessProbe } from './lock.js';
import { TMP_MAX_AGE_MS, isFlatTmpName } from './tmp-cleanup.js';

export interface CheckOptions {
  readonly root: string;
  /** The layout template the tree was served with; default `%u`. */
  readonly layout?: string | undefined;
  /** Used for the user folders' checks (form, root guard, lock files); fast-glob walks the tree itself. */
  readonly fs?: FsLayer | undefined;
  /** Now, in ms; default Date.now(). */
  readonly now?: number | undefined;
  readonly separators?: readonly string[] | undefined;
  /** This host's name, to tell our own dead processes' locks; default os.hostname(). */
  readonly hostname?: string | undefined;
  readonly lockStaleMs?: number | undefined;
  readonly processProbe?: ProcessProbe | undefined;
}

export interface CheckedUser {
  /** Folder relative to the root. */
  readonly folder: string;
  readonly form: 'maildir' | 'flat';
  /** Messages POP3 would list (cur/ + new/, or *.eml). */
  readonly messages: number;
  readonly newMessages: number;
  /** Stored bytes of those messages. */
  readonly bytes: number;
  readonly trashMessages: number;
  readonly trashBytes: number;
}

export type CheckIssue =
  | { readonly kind: 'unparsable'; readonly path: string; readonly reason: string }
  | { readonly kind: 'duplicate-base'; readonly base: string; readonly paths: readonly string[] }
  | { readonly kind: 'stale-tmp'; readonly path: string; readonly ageMs: number }
  | { readonly kind: 'journal'; readonly path: string }
  | {
      readonly kind: 'lock';
      readonly path: string;
      readonly state: 'live' | 'stale';
      readonly ageMs: number;
      readonly owner?: LockOwner;
    }
  | { readonly kind: 'folder'; readonly path: string; readonly reason: string };

export interface CheckReport {
  readonly root: string;
  readonly users: readonly CheckedUser[];
  readonly totals: { readonly users: number; readonly messages: number; readonly bytes: number };
  /** Paths in issues are relative to the root. */
  readonly issues: readonly CheckIssue[];
}

interface Walked {
  readonly rel: string;
  readonly name: string;
  readonly stats: Stats;
}

/** Walk `root` and report; rejects only when the root itself cannot be read. */
export async function checkTree(options: CheckOptions): Promise<CheckReport> {
  const root = path.resolve(options.root);
  const fs = options.fs ?? nodeFs;
  try {
    await fs.stat(root);
  } catch (err) {
    throw storageErrorFrom(err, `root ${root}`);
  }
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const ctx: Context = {
    root,
    fs,
    now: options.now ?? Date.now(),
    separators: options.separators ?? DEFAULT_INFO_SEPARATORS,
    host: options.hostname ?? osHostname(),
    lockStaleMs: options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
    probe: options.processProbe ?? linuxProcessProbe,
    issues: [],
  };
  const users: CheckedUser[] = [];
  for (const dir of await userFolders(root, layout)) {
    const user = await checkUser(ctx, dir);
    if (user !== undefined) users.push(user);
  }
  users.sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
  return {
    root,
    users,
    totals: {
      users: users.length,
      messages: users.reduce((n, u) => n + u.messages, 0),
      bytes: users.reduce((n, u) => n + u.bytes, 0),
    },
    issues: ctx.issues,
  };
}

interface Context {
  readonly root: string;
  readonly fs: FsLayer;
  readonly now: number;
  readonly separators: readonly string[];
  readonly host: string;
  readonly lockStaleMs: number;
  readonly probe: ProcessProbe;
  readonly issues: CheckIssue[];
}

/**
 * Candidate user folders: the layout's shape with every variable segment a
 * wildcard (`%d/%n` -> `*\/*`). A `%h` layout can put folders anywhere, so
 * there a folder is any directory holding cur/ or new/ (flat folders cannot
 * be told from other folders and are not found).
 */
async function userFolders(root: string, layout: string): Promise<string[]> {
  const walk = { cwd: root, dot: false, followSymbolicLinks: false, suppressErrors: true, absolute: true } as const;
  if (layout.includes('%h')) {
    const subdirs = await fg('**/{cur,new}', { ...walk, onlyDirectories: true, deep: 8 });
    return [...new Set(subdirs.map((d) => path.dirname(d)))].sort();
  }
  const segments = layout.split('/').filter((s) => s.length > 0);
  const pattern = segments.map((s) => (s.includes('%') ? '*' : fg.escapePath(s))).join('/');
  // Symlinked user folders are listed too (onlyDirectories would drop them), then judged; plain files are not users.
  const found = await fg(pattern, { ...walk, onlyFiles: false, deep: segments.length, objectMode: true });
  return found
    .filter((e) => e.dirent.isDirectory() || e.dirent.isSymbolicLink())
    .map((e) => e.path)
    .sort();
}

async function checkUser(ctx: Context, dir: string): Promise<CheckedUser | undefined> {
  const folder = path.relative(ctx.root, dir);
  try {
    await ensureInsideRoot(ctx.fs, ctx.root, dir);
  } catch {
    ctx.issues.push({ kind: 'folder', path: folder, reason: 'resolves outside the root (symbolic link)' });
    return undefined;
  }
  let form;
  try {
    form = await detectForm(ctx.fs, dir);
  } catch {
    ctx.issues.push({ kind: 'folder', path: folder, reason: 'not a folder' });
    return undefined;
  }
  if (form === 'missing') return undefined;
  const paths = maildirPaths(dir);
  await checkLeftovers(ctx, paths);
  return form === 'maildir' ? checkMaildir(ctx, paths, folder) : checkFlat(ctx, paths, folder);
}

async function walk(cwd: string, patterns: string[]): Promise<Walked[]> {
  const entries = await fg(patterns, {
    cwd,
    dot: true,
    onlyFiles: false,
    followSymbolicLinks: false,
    stats: true,
    suppressErrors: true,
  });
  return entries.flatMap((e) => (e.stats === undefined ? [] : [{ rel: e.path, name: e.name, stats: e.stats }]));
}

async function checkMaildir(ctx: Context, paths: MaildirPaths, folder: string): Promise<CheckedUser> {
  const entries = await walk(paths.dir, ['cur/*', 'new/*', 'tmp/*', '.Trash/cur/*', '.Trash/new/*']);
  const bases = new Map<string, string[]>();
  let messages = 0;
  let newMessages = 0;
  let bytes = 0;
  let trashMessages = 0;
  let trashBytes = 0;
  for (const e of entries) {
    const rel = path.join(folder, e.rel);
    const sub = e.rel.slice(0, e.rel.length - e.name.length - 1);
    if (e.name.startsWith('.')) continue;
    if (sub === 'tmp') {
      const age = ctx.now - e.stats.mtimeMs;
      if (age > TMP_MAX_AGE_MS) ctx.issues.push({ kind: 'stale-tmp', path: rel, ageMs: age });
      continue;
    }
    const reason = unlistable(e, ctx.separators);
    if (reason !== undefined) {
      if (!sub.startsWith('.Trash')) ctx.issues.push({ kind: 'unparsable', path: rel, reason });
      continue;
    }
    if (sub.startsWith('.Trash')) {
      trashMessages++;
      trashBytes += e.stats.size;
      continue;
    }
    messages++;
    if (sub === 'new') newMessages++;
    bytes += e.stats.size;
    const base = parseMaildirName(e.name, ctx.separators)?.base ?? e.name;
    const seen = bases.get(base);
    if (seen === undefined) bases.set(base, [rel]);
    else seen.push(rel);
  }
  for (const [base, found] of bases) {
    if (found.length > 1) ctx.issues.push({ kind: 'duplicate-base', base, paths: found.sort() });
  }
  return { folder, form: 'maildir', messages, newMessages, bytes, trashMessages, trashBytes };
}

async function checkFlat(ctx: Context, paths: MaildirPaths, folder: string): Promise<CheckedUser> {
  const entries = await walk(paths.dir, ['*.eml', '.*.tmp', '.Trash/*.eml']);
  let messages = 0;
  let bytes = 0;
  let trashMessages = 0;
  let trashBytes = 0;
  for (const e of entries) {
    const rel = path.join(folder, e.rel);
    if (isFlatTmpName(e.name) && !e.rel.includes('/')) {
      const age = ctx.now - e.stats.mtimeMs;
      if (age > TMP_MAX_AGE_MS) ctx.issues.push({ kind: 'stale-tmp', path: rel, ageMs: age });
      continue;
    }
    if (e.name.startsWith('.')) continue;
    const reason = unlistable(e, []);
    const isTrash = e.rel.startsWith('.Trash/');
    if (reason !== undefined) {
      if (!isTrash) ctx.issues.push({ kind: 'unparsable', path: rel, reason });
    } else if (isTrash) {
      trashMessages++;
      trashBytes += e.stats.size;
    } else {
      messages++;
      bytes += e.stats.size;
    }
  }
  return { folder, form: 'flat', messages, newMessages: 0, bytes, trashMessages, trashBytes };
}

/** Why scan.ts would not list this file, or undefined when it would. */
function unlistable(e: Walked, separators: readonly string[]): string | undefined {
  if (e.stats.isSymbolicLink()) return 'a symbolic link';
  if (e.stats.isDirectory()) return 'a folder';
  if (!e.stats.isFile()) return 'not a regular file';
  if (e.name.includes('\uFFFD')) return 'name is not valid UTF-8';
  const name = e.name.endsWith('.eml') && separators.length === 0 ? e.name.slice(0, -4) : e.name;
  if (parseMaildirName(name, separators) === undefined) return 'not a message file name';
  return undefined;
}

async function checkLeftovers(ctx: Context, paths: MaildirPaths): Promise<void> {
  const rel = (p: string) => path.relative(ctx.root, p);
  try {
    await ctx.fs.lstat(paths.journalFile);
    ctx.issues.push({ kind: 'journal', path: rel(paths.journalFile) });
  } catch {
    // none
  }
  let st: Stats;
  try {
    st = await ctx.fs.lstat(paths.lockFile);
  } catch {
    return;
  }
  const ageMs = ctx.now - st.mtimeMs;
  let owner: LockOwner | undefined;
  try {
    owner = parseOwner(await ctx.fs.readFile(paths.lockFile));
  } catch {
    owner = undefined;
  }
  let isStale = ageMs > ctx.lockStaleMs || owner === undefined;
  if (!isStale && owner !== undefined && owner.host === ctx.host) isStale = !(await ctx.probe.isAlive(owner));
  ctx.issues.push({
    kind: 'lock',
    path: rel(paths.lockFile),
    state: isStale ? 'stale' : 'live',
    ageMs,
    ...(owner === undefined ? {} : { owner }),
  });
}
