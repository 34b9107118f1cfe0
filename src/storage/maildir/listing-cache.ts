/**
 * The listing cache: the last listing of each maildrop with the stamps of
 * its directories, so a warm login does not read a 100,000-name directory
 * again, and the wire sizes of names without `W=`, so no file is read twice.
 *
 * Two layers: memory (a warm login in the same process reads nothing but
 * two directory stamps) and a file beside the Maildir
 * (`maildird-listing.cache`, like Dovecot's index files) for the next
 * process. Both are rebuildable: the tree stays the only truth (DESIGN
 * "Caches"), scan.ts revalidates every use against the directories' stamps,
 * and a lost, torn or foreign cache file only costs a rescan.
 *
 * File format (line based, so a 100,000-message cache parses in tens of ms;
 * JSON for every entry would cost several times that):
 *   maildird-listing 1
 *   {"form":"maildir","stamps":{...},"count":N}
 *   <d>\t<name>\t<baseLen>\t<size>\t<stored>\t<mtimeMs>\t<time>\t<baseUidl>\t<uidl>   (N lines, in order)
 *   end N
 * `<d>` is n, c or f; empty `<stored>`/`<mtimeMs>` mean unknown; empty
 * `<baseUidl>` means the base itself, empty `<uidl>` means `<baseUidl>`. A
 * name holding a control character or starting with `"` is written as a JSON
 * string. The last line proves the file is whole.
 */
import { constants } from 'node:fs';
import type { Logger } from '../../log/logger.js';
import type { FsLayer } from './fs.js';
import type { MaildirPaths } from './layout.js';
import type { DirStamp, EntryDir, Listing, ListedForm, ScanEntry } from './scan.js';

const MAGIC = 'maildird-listing 1';
const DIR_CODE: Readonly<Record<EntryDir, string>> = { new: 'n', cur: 'c', flat: 'f' };
const CODE_DIR: Readonly<Record<string, EntryDir>> = { n: 'new', c: 'cur', f: 'flat' };

export interface ListingCacheOptions {
  readonly fs: FsLayer;
  readonly logger?: Logger | undefined;
  /** Entries kept in memory over all maildrops before the least recently used listing is dropped. */
  readonly maxMemoryEntries?: number | undefined;
  /** Write and read the cache file beside each Maildir. Default true. */
  readonly isPersistent?: boolean | undefined;
}

export class ListingCache {
  readonly #fs: FsLayer;
  readonly #logger: Logger | undefined;
  readonly #maxEntries: number;
  readonly #isPersistent: boolean;
  /** Keyed by user folder; Map order is least recently used first. */
  readonly #memory = new Map<string, Listing>();
  #memoryEntries = 0;
  /** Folders whose memory listing has corrections not yet written to the file. */
  readonly #dirty = new Set<string>();
  /** The pending file write per folder. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(options: ListingCacheOptions) {
    this.#fs = options.fs;
    this.#logger = options.logger;
    this.#maxEntries = options.maxMemoryEntries ?? 1_000_000;
    this.#isPersistent = options.isPersistent ?? true;
  }

  /** The last listing of this folder, from memory or else the file; undefined when there is none usable. */
  async load(paths: MaildirPaths): Promise<Listing | undefined> {
    const hit = this.#memory.get(paths.dir);
    if (hit !== undefined) {
      this.#memory.delete(paths.dir);
      this.#memory.set(paths.dir, hit);
      return hit;
    }
    if (!this.#isPersistent) return undefined;
    const text = await this.#readFile(paths.listingCache);
    if (text === undefined) return undefined;
    const listing = decodeListing(text, paths);
    if (listing === undefined) {
      this.#logger?.warn({ path: paths.listingCache }, 'listing cache unreadable; rescanning');
      return undefined;
    }
    this.#remember(paths.dir, listing);
    return listing;
  }

  /**
   * Keep `listing` in memory now, and write it beside the Maildir soon
   * (atomically; a failure is only logged, the promise never rejects). The
   * write waits for the next turn of the event loop, so a login can answer
   * before a 100,000-line file is encoded, and it encodes in slices, so the
   * session's next commands (STAT, UIDL) do not wait for it either. Writes
   * per folder run one at a time, and one that a newer save or a correction
   * has overtaken is skipped. flush() waits for it (the maildrop does,
   * before it unlocks).
   */
  save(paths: MaildirPaths, listing: Listing): Promise<void> {
    this.#remember(paths.dir, listing);
    this.#dirty.delete(paths.dir);
    if (!this.#isPersistent) return Promise.resolve();
    const before = this.#writes.get(paths.dir) ?? Promise.resolve();
    const job = before
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(async () => {
        if (this.#memory.get(paths.dir) !== listing) return;
        await this.#writeFile(paths.listingCache, await encodeListingInSlices(listing));
      })
      .catch((err: unknown) => this.#logger?.warn({ path: paths.listingCache, err }, 'listing cache not written'));
    this.#writes.set(paths.dir, job);
    void job.finally(() => {
      if (this.#writes.get(paths.dir) === job) this.#writes.delete(paths.dir);
    });
    return job;
  }

  /** Wait for every pending write (store shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.#writes.values()]);
  }

  /**
   * A RETR found the true wire size differs from the listed one (a wrong
   * `W=` in a name, a file changed behind our back): remember the true size
   * for the next session. Snapshots already handed out are not changed.
   */
  correctSize(paths: MaildirPaths, filePath: string, wireSize: number): void {
    const listing = this.#memory.get(paths.dir);
    if (listing === undefined) return;
    const at = listing.entries.findIndex((e) => e.path === filePath);
    const entry = listing.entries[at];
    if (entry === undefined || entry.size === wireSize) return;
    const entries = listing.entries.slice();
    entries[at] = { ...entry, size: wireSize };
    this.#memory.set(paths.dir, { ...listing, entries });
    this.#dirty.add(paths.dir);
  }

  /** Wait for a pending save, then write corrections made since. */
  async flush(paths: MaildirPaths): Promise<void> {
    await this.#writes.get(paths.dir);
    if (!this.#dirty.delete(paths.dir)) return;
    const listing = this.#memory.get(paths.dir);
    if (listing !== undefined && this.#isPersistent) await this.#writeFile(paths.listingCache, encodeListing(listing));
  }

  /** Drop the memory copy (the file stays; it is revalidated on use anyway). */
  forget(paths: MaildirPaths): void {
    const old = this.#memory.get(paths.dir);
    if (old === undefined) return;
    this.#memory.delete(paths.dir);
    this.#memoryEntries -= old.entries.length;
    this.#dirty.delete(paths.dir);
  }

  /** Entries held in memory, over all folders. */
  get memoryEntries(): number {
    return this.#memoryEntries;
  }

  #remember(dir: string, listing: Listing): void {
    const old = this.#memory.get(dir);
    if (old !== undefined) {
      this.#memory.delete(dir);
      this.#memoryEntries -= old.entries.length;
    }
    this.#memory.set(dir, listing);
    this.#memoryEntries += listing.entries.length;
    for (const [key, value] of this.#memory) {
      if (this.#memoryEntries <= this.#maxEntries || key === dir) break;
      this.#memory.delete(key);
      this.#memoryEntries -= value.entries.length;
      this.#dirty.delete(key);
    }
  }

  async #readFile(file: string): Promise<string | undefined> {
    let handle;
    try {
      handle = await this.#fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.#logger?.warn({ path: file, code }, 'listing cache not readable');
      return undefined;
    }
    try {
      return await handle.readFile({ encoding: 'utf8' });
    } catch (err) {
      this.#logger?.warn({ path: file, err }, 'listing cache not readable');
      return undefined;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /** Write a temporary file and rename it over the cache: a reader sees the old or the new file, whole. */
  async #writeFile(file: string, text: string): Promise<void> {
    const tmp = `${file}.${process.pid}.tmp`;
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    try {
      let handle;
      try {
        handle = await this.#fs.open(tmp, flags, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // Left by a process with our pid that died mid-write.
        await this.#fs.unlink(tmp);
        handle = await this.#fs.open(tmp, flags, 0o600);
      }
      try {
        await handle.writeFile(text, { encoding: 'utf8' });
      } finally {
        await handle.close();
      }
      await this.#fs.rename(tmp, file);
    } catch (err) {
      this.#logger?.warn({ path: file, err }, 'listing cache not written');
      await this.#fs.unlink(tmp).catch(() => undefined);
    }
  }
}

function encodeName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.startsWith('"') || /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

function decodeName(field: string): string | undefined {
  if (!field.startsWith('"')) return field;
  try {
    const value: unknown = JSON.parse(field);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export function encodeListing(listing: Listing): string {
  const count = listing.entries.length;
  return encodeHead(listing) + encodeEntries(listing.entries, 0, count) + encodeTail(count);
}

/**
 * Entries encoded per turn of the event loop by encodeListingInSlices: a
 * 100,000-message listing takes about 100 ms to encode in one go, which a
 * client's STAT right after its login would wait for; one slice takes a
 * few ms.
 */
export const ENCODE_SLICE_ENTRIES = 4096;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The same text as encodeListing, built ENCODE_SLICE_ENTRIES entries at a
 * time with `yieldTurn` awaited between slices, so the commands of the
 * session that triggered a background save are served while it encodes.
 */
export async function encodeListingInSlices(listing: Listing, yieldTurn: () => Promise<void> = nextTurn): Promise<string> {
  const count = listing.entries.length;
  const parts = [encodeHead(listing)];
  for (let from = 0; from < count; from += ENCODE_SLICE_ENTRIES) {
    if (from > 0) await yieldTurn();
    parts.push(encodeEntries(listing.entries, from, Math.min(count, from + ENCODE_SLICE_ENTRIES)));
  }
  parts.push(encodeTail(count));
  return parts.join('');
}

function encodeHead(listing: Listing): string {
  return `${MAGIC}\n${JSON.stringify({ form: listing.form, stamps: listing.stamps, count: listing.entries.length })}\n`;
}

function encodeTail(count: number): string {
  return `end ${count}\n`;
}

/** Lines for entries [from, to), each ending in LF. */
function encodeEntries(entries: readonly ScanEntry[], from: number, to: number): string {
  const lines: string[] = [];
  for (let i = from; i < to; i++) {
    const e = entries[i] as ScanEntry;
    lines.push(
      [
        DIR_CODE[e.dir],
        encodeName(e.name),
        e.base.length,
        e.size,
        e.storedSize ?? '',
        e.mtimeMs ?? '',
        e.time,
        e.baseUidl === e.base ? '' : e.baseUidl,
        e.uidl === e.baseUidl ? '' : e.uidl,
      ].join('\t'),
    );
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

interface Header {
  form: ListedForm;
  stamps: Partial<Record<EntryDir, DirStamp>>;
  count: number;
}

function parseHeader(line: string | undefined): Header | undefined {
  if (line === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { form, stamps, count } = value as Record<string, unknown>;
  if (form !== 'maildir' && form !== 'flat') return undefined;
  if (!Number.isSafeInteger(count) || (count as number) < 0) return undefined;
  if (typeof stamps !== 'object' || stamps === null) return undefined;
  const checked: Partial<Record<EntryDir, DirStamp>> = {};
  for (const [dir, stamp] of Object.entries(stamps)) {
    if (dir !== 'new' && dir !== 'cur' && dir !== 'flat') return undefined;
    const s = stamp as Partial<DirStamp> | null;
    if (
      typeof s?.mtimeMs !== 'number' ||
      typeof s.ctimeMs !== 'number' ||
      typeof s.ino !== 'number' ||
      typeof s.isTrusted !== 'boolean'
    ) {
      return undefined;
    }
    checked[dir] = { mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, isTrusted: s.isTrusted };
  }
  return { form, stamps: checked, count: count as number };
}

/** A non-negative integer field (no sign, no exponent), or undefined. */
function intField(text: string, from: number, to: number): number | undefined {
  if (to <= from || to - from > 16) return undefined;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return undefined;
    value = value * 10 + c;
  }
  return value;
}

/** A finite number field (mtimes carry fractions), or undefined. */
function numberField(text: string, from: number, to: number): number | undefined {
  if (to <= from) return undefined;
  const n = Number(text.slice(from, to));
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Parse a cache file; undefined when it is not whole and well-formed (then
 * the caller rescans). Hot path for a first login after a restart: fields
 * are found with indexOf, no per-line split.
 */
export function decodeListing(text: string, paths: MaildirPaths): Listing | undefined {
  const magicEnd = text.indexOf('\n');
  if (magicEnd < 0 || text.slice(0, magicEnd) !== MAGIC) return undefined;
  const headerEnd = text.indexOf('\n', magicEnd + 1);
  if (headerEnd < 0) return undefined;
  const header = parseHeader(text.slice(magicEnd + 1, headerEnd));
  if (header === undefined) return undefined;
  const trailer = `end ${header.count}\n`;
  if (!text.endsWith(trailer)) return undefined;
  const bodyEnd = text.length - trailer.length;
  const folders: Readonly<Record<EntryDir, string>> = { new: paths.new, cur: paths.cur, flat: paths.dir };
  const isFlat = header.form === 'flat';
  const entries: ScanEntry[] = new Array<ScanEntry>(header.count);
  const tabs: number[] = new Array<number>(8);
  let at = headerEnd + 1;
  for (let i = 0; i < header.count; i++) {
    const lineEnd = text.indexOf('\n', at);
    if (lineEnd < 0 || lineEnd >= bodyEnd + 1) return undefined;
    let from = at;
    for (let f = 0; f < 8; f++) {
      const tab = text.indexOf('\t', from);
      if (tab < 0 || tab > lineEnd) return undefined;
      tabs[f] = tab;
      from = tab + 1;
    }
    if (text.indexOf('\t', from) >= 0 && text.indexOf('\t', from) < lineEnd) return undefined;
    const [t0, t1, t2, t3, t4, t5, t6, t7] = tabs as [number, number, number, number, number, number, number, number];
    const dir = t0 === at + 1 ? CODE_DIR[text.charAt(at)] : undefined;
    const name = decodeName(text.slice(t0 + 1, t1));
    const baseLen = intField(text, t1 + 1, t2);
    const size = intField(text, t2 + 1, t3);
    const time = numberField(text, t5 + 1, t6);
    // A forged cache must not make us open a path outside the folder.
    if (dir === undefined || name === undefined || name.startsWith('.') || /[/\0]/.test(name)) return undefined;
    if (baseLen === undefined || baseLen < 1 || baseLen > name.length) return undefined;
    if (size === undefined || time === undefined || (dir === 'flat') !== isFlat) return undefined;
    const base = baseLen === name.length ? name : name.slice(0, baseLen);
    const baseUidl = t7 === t6 + 1 ? base : text.slice(t6 + 1, t7);
    const entry: {
      -readonly [K in keyof ScanEntry]: ScanEntry[K];
    } = {
      path: `${folders[dir]}/${name}`,
      dir,
      name,
      base,
      uidl: lineEnd === t7 + 1 ? baseUidl : text.slice(t7 + 1, lineEnd),
      baseUidl,
      size,
      time,
    };
    const stored = intField(text, t3 + 1, t4);
    if (stored !== undefined) entry.storedSize = stored;
    const mtimeMs = numberField(text, t4 + 1, t5);
    if (mtimeMs !== undefined) entry.mtimeMs = mtimeMs;
    entries[i] = entry;
    at = lineEnd + 1;
  }
  if (at !== bodyEnd) return undefined;
  return { form: header.form, stamps: header.stamps, entries };
}
