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

  /** Keep `listing` in memory and write it beside the Maildir (atomically; a failure is only logged). */
  async save(paths: MaildirPaths, listing: Listing): Promise<void> {
    this.#remember(paths.dir, listing);
    this.#dirty.delete(paths.dir);
    if (this.#isPersistent) await this.#writeFile(paths.listingCache, encodeListing(listing));
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

  /** Write corrections made since the last save. */
  async flush(paths: MaildirPaths): Promise<void> {
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
  const lines: string[] = [
    MAGIC,
    JSON.stringify({ form: listing.form, stamps: listing.stamps, count: listing.entries.length }),
  ];
  for (const e of listing.entries) {
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
  lines.push(`end ${listing.entries.length}`, '');
  return lines.join('\n');
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

function toNumber(field: string): number | undefined {
  if (field.length === 0) return undefined;
  const n = Number(field);
  return Number.isFinite(n) ? n : undefined;
}

/** Parse a cache file; undefined when it is not whole and well-formed (then the caller rescans). */
export function decodeListing(text: string, paths: MaildirPaths): Listing | undefined {
  const lines = text.split('\n');
  if (lines[0] !== MAGIC) return undefined;
  const header = parseHeader(lines[1]);
  if (header === undefined) return undefined;
  // lines: magic, header, count entries, `end N`, and '' after the final newline.
  if (lines.length !== header.count + 4 || lines[header.count + 2] !== `end ${header.count}`) return undefined;
  const folders: Readonly<Record<EntryDir, string>> = { new: paths.new, cur: paths.cur, flat: paths.dir };
  const entries: ScanEntry[] = new Array<ScanEntry>(header.count);
  for (let i = 0; i < header.count; i++) {
    const f = (lines[i + 2] as string).split('\t');
    if (f.length !== 9) return undefined;
    const dir = CODE_DIR[f[0] as string];
    const name = decodeName(f[1] as string);
    const baseLen = Number(f[2]);
    const size = Number(f[3]);
    const time = Number(f[6]);
    // A forged cache must not make us open a path outside the folder.
    if (dir === undefined || name === undefined || name.startsWith('.') || /[/\0]/.test(name)) return undefined;
    if (!Number.isSafeInteger(baseLen) || baseLen < 1 || baseLen > name.length) return undefined;
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isFinite(time)) return undefined;
    if ((dir === 'flat') !== (header.form === 'flat')) return undefined;
    const base = name.slice(0, baseLen);
    const baseUidl = f[7] === '' ? base : (f[7] as string);
    const entry: {
      -readonly [K in keyof ScanEntry]: ScanEntry[K];
    } = {
      path: `${folders[dir]}/${name}`,
      dir,
      name,
      base,
      uidl: f[8] === '' ? baseUidl : (f[8] as string),
      baseUidl,
      size,
      time,
    };
    const stored = toNumber(f[4] as string);
    if (stored !== undefined) entry.storedSize = stored;
    const mtimeMs = toNumber(f[5] as string);
    if (mtimeMs !== undefined) entry.mtimeMs = mtimeMs;
    entries[i] = entry;
  }
  return { form: header.form, stamps: header.stamps, entries };
}
