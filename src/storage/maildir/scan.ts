/**
 * List a maildrop: the names in `new/` and `cur/` (or the `*.eml` files of a
 * flat folder), each with its UIDL and wire size, in DESIGN.md's order.
 *
 * Speed (DESIGN "Where the speed comes from"): a listing is `readdir` only
 * when names carry `,W=`; no stat and no open per message. Sizes of names
 * without `W=` are computed once by reading the file and then carried in the
 * listing, which listing-cache.ts keeps; a directory whose stamp (mtime,
 * ctime, inode) matches a trusted stamp of the previous listing is not read
 * again at all.
 */
import * as path from 'node:path';
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { storageErrorFrom } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { MessageInfo } from '../store.js';
import { WireSizeCounter } from '../wire.js';
import { DEFAULT_INFO_SEPARATORS, hashedUidl, parseMaildirName, uidlFromBase } from './filename.js';
import type { FsLayer } from './fs.js';
import type { FolderForm, MaildirPaths } from './layout.js';

export type EntryDir = 'new' | 'cur' | 'flat';
export type ListedForm = Exclude<FolderForm, 'missing'>;

export interface ScanEntry extends MessageInfo {
  /** Absolute path of the file. */
  readonly path: string;
  readonly dir: EntryDir;
  /** File name as found (with the info for a Maildir, with `.eml` for a flat folder). */
  readonly name: string;
  /** Identity: the name before the info (Maildir) or without `.eml` (flat). */
  readonly base: string;
  /** The UIDL given to this message (differs from baseUidl only for a duplicate base). */
  readonly uidl: string;
  /** uidlFromBase(base). */
  readonly baseUidl: string;
  /** Wire size: `W=`, or computed from the bytes, or corrected after a RETR. */
  readonly size: number;
  /** Stored size (`S=` or the file's size), when known. */
  readonly storedSize?: number;
  /** The file's mtime, when it was needed (no time in the name, a tie, a flat file). */
  readonly mtimeMs?: number;
  /** Order key in microseconds: the name's leading `seconds[.M<usec>]`, else the mtime. */
  readonly time: number;
}

/** What identifies a directory's state: any entry change moves mtime and ctime. */
export interface DirStamp {
  readonly mtimeMs: number;
  /** ctime too: `utimes()` (rsync -t, touch -d) can set mtime back, never ctime. */
  readonly ctimeMs: number;
  readonly ino: number;
  /**
   * False when the directory changed too close to the scan to rule out a
   * later change with the same timestamp (DESIGN "beware mtime
   * granularity"): such a stamp never lets the listing be reused.
   */
  readonly isTrusted: boolean;
}

export interface Listing {
  readonly form: ListedForm;
  /** Stamp of each directory listed; absent for a directory that does not exist. */
  readonly stamps: Readonly<Partial<Record<EntryDir, DirStamp>>>;
  /** Every message, oldest first. */
  readonly entries: readonly ScanEntry[];
}

export interface SkippedFile {
  readonly path: string;
  readonly reason: string;
}

export interface ScanOptions {
  readonly fs: FsLayer;
  readonly logger?: Logger | undefined;
  /** Info separators to recognise; default `:`, `;`, `!`. */
  readonly separators?: readonly string[] | undefined;
  /** The last listing of this folder (from the cache), reused where its stamps still hold. */
  readonly previous?: Listing | undefined;
  /**
   * Current time in ms, read BEFORE the scan; ideally on the file system's
   * clock. Default Date.now.
   */
  readonly now?: (() => number) | undefined;
  /** Files read in parallel to compute sizes of names without `W=`. Default 16. */
  readonly concurrency?: number | undefined;
}

export interface ScanResult {
  readonly listing: Listing;
  /** False when `previous` was returned unchanged (nothing was read but the directory stamps). */
  readonly isChanged: boolean;
  /** Directories that were read again. */
  readonly rescanned: readonly EntryDir[];
  /** Files in the rescanned directories that are not listed (logged at warn). */
  readonly skipped: readonly SkippedFile[];
}

/**
 * A directory changed less than this long before the scan started is not
 * trusted (DESIGN: "a directory changed within the same second as the scan
 * is rescanned"; Dovecot's maildir sync uses the same one-second rule). It
 * covers kernels that stamp a change with a coarse clock a tick in the
 * past. Directories whose stamps are whole seconds live on a file system
 * with 1 s or 2 s (FAT) timestamps: those need COARSE_TRUST_MARGIN_MS.
 */
export const TRUST_MARGIN_MS = 1000;
export const COARSE_TRUST_MARGIN_MS = 2000;

/** Whether a listing made at `now` can be reused while the directory keeps `stamp`. */
export function isTrustedAt(stamp: Omit<DirStamp, 'isTrusted'>, now: number): boolean {
  const isCoarse = stamp.mtimeMs % 1000 === 0 && stamp.ctimeMs % 1000 === 0;
  const changed = Math.max(stamp.mtimeMs, stamp.ctimeMs);
  return now - changed >= (isCoarse ? COARSE_TRUST_MARGIN_MS : TRUST_MARGIN_MS);
}

const MEASURE_BUFFER_BYTES = 64 * 1024;

/**
 * An entry while a scan builds it. Fresh drafts are mutable; entries reused
 * from the previous listing are the very objects snapshots hold, so code
 * that changes one of those replaces it with a copy instead (`isFresh`).
 */
interface Draft {
  path: string;
  dir: EntryDir;
  name: string;
  base: string;
  uidl: string;
  baseUidl: string;
  size: number;
  storedSize?: number;
  mtimeMs?: number;
  time: number;
}

/** Markers for the two unknowns a draft can have before it is complete. */
const UNKNOWN = -1;

export async function scanMaildrop(paths: MaildirPaths, form: ListedForm, options: ScanOptions): Promise<ScanResult> {
  const now = (options.now ?? Date.now)();
  const dirs: readonly EntryDir[] = form === 'maildir' ? ['new', 'cur'] : ['flat'];
  const previous = options.previous?.form === form ? options.previous : undefined;
  const stamps = await Promise.all(dirs.map((dir) => stampOf(options.fs, dirPath(paths, dir))));
  const reuse = dirs.map((dir, i) => isSameTrusted(previous?.stamps[dir], stamps[i]));
  if (previous !== undefined && reuse.every(Boolean)) {
    return { listing: previous, isChanged: false, rescanned: [], skipped: [] };
  }

  const skipped: SkippedFile[] = [];
  const drafts: Draft[] = [];
  const rescanned: EntryDir[] = [];
  const newStamps: Partial<Record<EntryDir, DirStamp>> = {};
  for (const [i, dir] of dirs.entries()) {
    const stamp = stamps[i];
    const kept = previous?.entries.filter((e) => e.dir === dir) ?? [];
    if (reuse[i] === true) {
      // Entries are immutable and shared with snapshots: reused as they are,
      // copied only where something about them changes (see Draft).
      for (const e of kept) drafts.push(e as Draft);
      const same = previous?.stamps[dir];
      if (same !== undefined) newStamps[dir] = same;
      continue;
    }
    rescanned.push(dir);
    if (stamp === undefined) continue; // no such directory: nothing in it
    newStamps[dir] = { ...stamp, isTrusted: isTrustedAt(stamp, now) };
    const known = new Map<string, ScanEntry>();
    for (const e of kept) known.set(e.name, e);
    await readDirectory(paths, dir, known, options, drafts, skipped);
  }

  if (previous !== undefined && form === 'maildir') reuseByBase(drafts, previous);
  const complete = await completeDrafts(drafts, form, options, skipped);
  const entries = form === 'flat' ? complete : identify(complete);
  for (const s of skipped) options.logger?.warn({ path: s.path, reason: s.reason }, 'maildrop file not listed');
  return { listing: { form, stamps: newStamps, entries }, isChanged: true, rescanned, skipped };
}

function dirPath(paths: MaildirPaths, dir: EntryDir): string {
  return dir === 'flat' ? paths.dir : paths[dir];
}

async function stampOf(fs: FsLayer, dir: string): Promise<Omit<DirStamp, 'isTrusted'> | undefined> {
  let st: Stats;
  try {
    st = await fs.stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw storageErrorFrom(err, `stat ${dir}`);
  }
  return { mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

function isSameTrusted(old: DirStamp | undefined, current: Omit<DirStamp, 'isTrusted'> | undefined): boolean {
  if (current === undefined) return old === undefined;
  return (
    old !== undefined &&
    old.isTrusted &&
    old.mtimeMs === current.mtimeMs &&
    old.ctimeMs === current.ctimeMs &&
    old.ino === current.ino
  );
}

/** readdir one directory into drafts; names known from the previous listing keep their entry. */
async function readDirectory(
  paths: MaildirPaths,
  dir: EntryDir,
  known: ReadonlyMap<string, ScanEntry>,
  options: ScanOptions,
  drafts: Draft[],
  skipped: SkippedFile[],
): Promise<void> {
  const folder = dirPath(paths, dir);
  const separators = options.separators ?? DEFAULT_INFO_SEPARATORS;
  let dirents;
  try {
    dirents = await options.fs.readdirWithTypes(folder);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // removed since the stamp: nothing in it
    throw storageErrorFrom(err, `read ${folder}`);
  }
  for (const dirent of dirents) {
    const name = dirent.name;
    // Dot files are never messages: .keep, NFS silly-renames, a flat folder's in-flight .<unique>.tmp.
    if (name.startsWith('.')) continue;
    if (dir === 'flat' && !name.endsWith('.eml')) continue;
    const filePath = `${folder}/${name}`;
    if (!dirent.isFile()) {
      // A symlink could point outside the root (DESIGN invariant 4); a folder or device is no message.
      const what = dirent.isSymbolicLink() ? 'a symbolic link' : dirent.isDirectory() ? 'a folder' : 'not a regular file';
      skipped.push({ path: filePath, reason: what });
      continue;
    }
    if (name.includes('\uFFFD')) {
      // readdir decoded an invalid UTF-8 name; Node cannot open it by that string.
      skipped.push({ path: filePath, reason: 'name is not valid UTF-8' });
      continue;
    }
    const old = known.get(name);
    if (old !== undefined) {
      // A flat file may be re-measured (edited in place): give it its own copy.
      drafts.push(dir === 'flat' ? { ...old } : (old as Draft));
      continue;
    }
    const parsed = parseMaildirName(dir === 'flat' ? name.slice(0, -4) : name, dir === 'flat' ? [] : separators);
    if (parsed === undefined) {
      skipped.push({ path: filePath, reason: 'not a message file name' });
      continue;
    }
    const base = dir === 'flat' ? name.slice(0, -4) : parsed.base;
    const baseUidl = uidlFromBase(base);
    const draft: Draft = {
      path: filePath,
      dir,
      name,
      base,
      uidl: baseUidl,
      baseUidl,
      size: parsed.wireSize ?? UNKNOWN,
      time: parsed.seconds === undefined ? UNKNOWN : parsed.seconds * 1_000_000 + (parsed.usec ?? 0),
    };
    if (parsed.size !== undefined) draft.storedSize = parsed.size;
    drafts.push(draft);
  }
}

/** Below this many unknown sizes, reading the files is cheaper than indexing the previous listing. */
const REUSE_BY_BASE_MIN = 64;

/**
 * A Maildir message keeps its bytes when it is renamed (new/ -> cur/, flags
 * changed): the base is its identity. After a session marked many messages
 * Seen, names without `W=` get their size (and mtime) from the previous
 * listing's entry with the same base instead of being read again.
 */
function reuseByBase(drafts: Draft[], previous: Listing): void {
  let unknown = 0;
  for (const d of drafts) if (d.size === UNKNOWN) unknown++;
  if (unknown < REUSE_BY_BASE_MIN) return;
  const byBase = new Map<string, ScanEntry>();
  for (const e of previous.entries) byBase.set(e.base, e);
  for (const d of drafts) {
    if (d.size !== UNKNOWN) continue;
    const old = byBase.get(d.base);
    if (old === undefined) continue;
    d.size = old.size;
    if (old.storedSize !== undefined) d.storedSize = old.storedSize;
    if (d.time === UNKNOWN && old.mtimeMs !== undefined) {
      d.mtimeMs = old.mtimeMs;
      d.time = old.time;
    }
  }
}

/**
 * Fill what names did not tell: wire sizes (read the file), times of names
 * without one (mtime), and for flat folders check that a remembered file was
 * not rewritten in place (editors do that to `.eml` files; Maildir files
 * never change once delivered). Files that vanished meanwhile are dropped.
 */
async function completeDrafts(
  drafts: Draft[],
  form: ListedForm,
  options: ScanOptions,
  skipped: SkippedFile[],
): Promise<Draft[]> {
  const gone = new Set<Draft>();
  const buffers: Buffer[] = [];
  const work = drafts.filter((d) => d.size === UNKNOWN || d.time === UNKNOWN || form === 'flat');
  await eachLimited(work, options.concurrency ?? 16, async (d, worker) => {
    if (d.size === UNKNOWN || form === 'flat') {
      const buf = (buffers[worker] ??= Buffer.allocUnsafe(MEASURE_BUFFER_BYTES));
      const measured = await measure(options.fs, d, buf, form === 'flat');
      if (typeof measured === 'string') {
        if (measured !== 'vanished') skipped.push({ path: d.path, reason: measured });
        gone.add(d);
      }
    } else {
      const st = await statOrUndefined(options.fs, d.path);
      if (st === undefined) gone.add(d);
      else d.mtimeMs = st.mtimeMs;
    }
    if (d.time === UNKNOWN && d.mtimeMs !== undefined) d.time = Math.floor(d.mtimeMs * 1000);
  });
  const live = gone.size === 0 ? drafts : drafts.filter((d) => !gone.has(d));
  // Ties on the name's time are broken by mtime: stat only tied files whose
  // mtime is unknown. Two copies of one base always tie, so this stat also
  // drops a new/ copy that another reader moved to cur/ between our readdirs.
  live.sort(byOrder);
  const tied = new Set<Draft>();
  for (let i = 1; i < live.length; i++) {
    const a = live[i - 1] as Draft;
    const b = live[i] as Draft;
    if (a.time !== b.time) continue;
    if (a.mtimeMs === undefined) tied.add(a);
    if (b.mtimeMs === undefined) tied.add(b);
  }
  if (tied.size === 0) return live;
  const mtimes = new Map<Draft, number>();
  await eachLimited([...tied], options.concurrency ?? 16, async (d) => {
    const st = await statOrUndefined(options.fs, d.path);
    if (st === undefined) gone.add(d);
    else mtimes.set(d, st.mtimeMs);
  });
  const result: Draft[] = [];
  for (const d of live) {
    if (gone.has(d)) continue;
    const mtimeMs = mtimes.get(d);
    result.push(mtimeMs === undefined ? d : { ...d, mtimeMs });
  }
  return result.sort(byOrder);
}

/**
 * Read a file once for its wire size. A flat entry remembered from an
 * earlier scan is re-measured only when its size or mtime changed. Returns
 * 'vanished' for a file removed meanwhile, a reason string for one that
 * cannot be read.
 */
async function measure(fs: FsLayer, d: Draft, buf: Buffer, isRecheck: boolean): Promise<string | undefined> {
  let handle;
  try {
    // O_NOFOLLOW: a file swapped for a symlink after readdir is never followed out of the root.
    handle = await fs.open(d.path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'vanished';
    return `cannot open: ${code ?? String(err)}`;
  }
  try {
    // fstat only when the mtime is needed (no time in the name, a flat
    // recheck): open, read, close is the whole cost of a small Maildir file.
    if (isRecheck || d.time === UNKNOWN) {
      const st = await handle.stat();
      if (!st.isFile()) return 'not a regular file';
      const isUnchanged = isRecheck && d.size !== UNKNOWN && d.storedSize === st.size && d.mtimeMs === st.mtimeMs;
      d.mtimeMs = st.mtimeMs;
      if (isUnchanged) return undefined;
    }
    const counter = new WireSizeCounter();
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead > 0) counter.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      // A short read of a regular file is its end: no extra read to see 0.
      if (bytesRead < buf.length) break;
    }
    d.size = counter.wireSize;
    d.storedSize = counter.storedSize;
    return undefined;
  } catch (err) {
    return `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function statOrUndefined(fs: FsLayer, p: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch {
    return undefined;
  }
}

/** Run `fn` over `items` with at most `limit` in flight; `worker` is the slot index (for per-slot buffers). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async (worker: number): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item, worker);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, (_, w) => run(w)));
}

function compareNames(a: Draft, b: Draft): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  // The same name in cur/ and new/: cur/ first (it keeps the plain UIDL).
  return a.dir === b.dir ? 0 : a.dir === 'cur' ? -1 : 1;
}

/** DESIGN "Order": the name's time, then mtime, then name. */
function byOrder(a: Draft, b: Draft): number {
  return a.time - b.time || (a.mtimeMs ?? 0) - (b.mtimeMs ?? 0) || compareNames(a, b);
}

/**
 * DESIGN "Identity" for broken trees: a base found twice keeps its plain
 * UIDL in `cur/` (or, within one directory, for the first name), and every
 * other copy gets the hash of `<dir>/<name>`.
 *
 * Without a Map over every entry: two copies of one base have the same time
 * key (it comes from the base), so after the sort they sit in one run of
 * equal times. Only entries in such runs, and the few whose time came from
 * their mtime (names without a leading time), are looked at by base.
 */
function identify(sorted: Draft[]): ScanEntry[] {
  const byBase = new Map<string, Draft[]>();
  const add = (d: Draft): void => {
    const list = byBase.get(d.baseUidl);
    if (list === undefined) byBase.set(d.baseUidl, [d]);
    else list.push(d);
  };
  for (let i = 0; i < sorted.length; i++) {
    const d = sorted[i] as Draft;
    const isInRun = sorted[i - 1]?.time === d.time || sorted[i + 1]?.time === d.time;
    const isMtimeTimed = d.mtimeMs !== undefined && d.time === Math.floor(d.mtimeMs * 1000);
    if (isInRun || isMtimeTimed) add(d);
  }
  const losers = new Map<Draft, string>();
  for (const copies of byBase.values()) {
    if (copies.length < 2) continue;
    const keeper = copies.reduce((best, d) => (keepsPlainUidl(d, best) ? d : best));
    for (const d of copies) if (d !== keeper) losers.set(d, hashedUidl(`${d.dir}/${d.name}`));
  }
  for (let i = 0; i < sorted.length; i++) {
    const d = sorted[i] as Draft;
    const uidl = losers.get(d) ?? d.baseUidl;
    if (d.uidl !== uidl) sorted[i] = { ...d, uidl };
  }
  return sorted as ScanEntry[];
}

/** Which of two copies of one base keeps the plain UIDL: the cur/ one, else the smaller name. */
function keepsPlainUidl(candidate: Draft, current: Draft): boolean {
  if (candidate.dir !== current.dir) return candidate.dir === 'cur';
  return candidate.name < current.name;
}
