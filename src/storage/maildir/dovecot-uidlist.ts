/**
 * Read-only support for Dovecot's `dovecot-uidlist`, so leave-on-server
 * clients keep their UIDLs when a tree Dovecot served moves to maildird
 * (`uidlMode: 'dovecot'`). maildird never writes this file.
 *
 * Format (Dovecot src/lib-storage/index/maildir/maildir-uidlist.c), version 3:
 *   3 V<uidvalidity> N<nextuid> G<guid>           header: space-separated key+value fields
 *   <uid> [<key><value> ...] :<file name>          one line per message
 * Extension fields are one letter and a value (possibly empty): `P` the
 * saved POP3 UIDL (empty: the file name is the UIDL), `W` the wire size,
 * `O` the POP3 order, `G` the GUID, ... The name is everything after the
 * first field starting with `:`, and is stored without the `:2,` info.
 * Versions 1 and 2 have a header `<version> <uidvalidity> <nextuid>` and
 * lines `<uid> <file name>`.
 *
 * Which UIDL Dovecot gives (pop3-commands.c): the saved `P` value when there
 * is one, else `pop3_uidl_format`, default `%08Xu%08Xv`: UID and UIDVALIDITY
 * as 8 hex digits each. Dovecot 2.3's `%X` prints lowercase hex; the fixture
 * fixtures/dovecot-uidlist/ holds what Dovecot 2.3.19 answered.
 */
import { constants } from 'node:fs';
import type { FsLayer } from './fs.js';
import { DEFAULT_INFO_SEPARATORS, parseMaildirName } from './filename.js';

export interface DovecotUidRecord {
  readonly uid: number;
  /** The file's base name (without `:2,` info). */
  readonly base: string;
  /** One-letter extension fields and their values as written. */
  readonly extensions: Readonly<Record<string, string>>;
}

export interface DovecotUidlist {
  readonly version: number;
  readonly uidValidity: number;
  readonly nextUid: number;
  /** Records by base name. */
  readonly records: ReadonlyMap<string, DovecotUidRecord>;
  /** Lines that could not be parsed (skipped). */
  readonly badLines: number;
}

function isUint32(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

/** Parse the file's text; undefined when the header is not one we know (then no Dovecot UIDLs are used). */
export function parseDovecotUidlist(text: string): DovecotUidlist | undefined {
  const lines = text.split('\n');
  const header = (lines[0] ?? '').trim().split(' ');
  const version = Number(header[0]);
  let uidValidity: number;
  let nextUid: number;
  if (version === 3) {
    const fields = new Map<string, string>();
    for (const field of header.slice(1)) if (field.length > 0) fields.set(field.charAt(0), field.slice(1));
    uidValidity = Number(fields.get('V'));
    nextUid = Number(fields.get('N'));
  } else if (version === 1 || version === 2) {
    uidValidity = Number(header[1]);
    nextUid = Number(header[2]);
  } else {
    return undefined;
  }
  if (!isUint32(uidValidity) || uidValidity === 0 || !isUint32(nextUid)) return undefined;

  const records = new Map<string, DovecotUidRecord>();
  let badLines = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.length === 0) continue;
    const record = version === 3 ? parseV3Line(line) : parseOldLine(line);
    if (record === undefined) {
      badLines++;
      continue;
    }
    records.set(record.base, record);
  }
  return { version, uidValidity, nextUid, records, badLines };
}

function baseOf(name: string): string | undefined {
  if (name.length === 0 || name.includes('/') || name.includes('\0')) return undefined;
  return parseMaildirName(name, DEFAULT_INFO_SEPARATORS)?.base;
}

function parseUid(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const uid = Number(text);
  return isUint32(uid) && uid > 0 ? uid : undefined;
}

function parseV3Line(line: string): DovecotUidRecord | undefined {
  const space = line.indexOf(' ');
  if (space < 0) return undefined;
  const uid = parseUid(line.slice(0, space));
  if (uid === undefined) return undefined;
  const extensions: Record<string, string> = {};
  let at = space + 1;
  while (at < line.length && line.charAt(at) !== ':') {
    let end = line.indexOf(' ', at);
    if (end < 0) end = line.length;
    const field = line.slice(at, end);
    if (field.length > 0) extensions[field.charAt(0)] = field.slice(1);
    at = end + 1;
  }
  if (line.charAt(at) !== ':') return undefined;
  const base = baseOf(line.slice(at + 1));
  return base === undefined ? undefined : { uid, base, extensions };
}

function parseOldLine(line: string): DovecotUidRecord | undefined {
  const space = line.indexOf(' ');
  if (space < 0) return undefined;
  const uid = parseUid(line.slice(0, space));
  const base = baseOf(line.slice(space + 1));
  return uid === undefined || base === undefined ? undefined : { uid, base, extensions: {} };
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** RFC 1939 section 7: 1-70 characters in 0x21-0x7E. */
function isValidUidl(s: string): boolean {
  return /^[\x21-\x7e]{1,70}$/.test(s);
}

/**
 * The UIDL Dovecot gave this message: the saved `P` value (empty: the base
 * name), else `%08Xu%08Xv`. A saved value that is not a valid RFC 1939
 * unique-id falls back to the UID form.
 */
export function dovecotUidl(list: DovecotUidlist, record: DovecotUidRecord): string {
  const saved = record.extensions['P'];
  if (saved !== undefined) {
    const uidl = saved.length === 0 ? record.base : saved;
    if (isValidUidl(uidl)) return uidl;
  }
  return `${hex8(record.uid)}${hex8(list.uidValidity)}`;
}

interface Stamp {
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly size: number;
  readonly ino: number;
}

/**
 * Reads `dovecot-uidlist` files, keeping the parsed form per path while the
 * file's stamp (mtime, ctime, size, inode) holds, so a warm login with
 * 100,000 messages does not parse 100,000 lines again.
 */
export class DovecotUidlistReader {
  readonly #fs: FsLayer;
  readonly #parsed = new Map<string, { stamp: Stamp; list: DovecotUidlist | undefined }>();
  readonly #maxFiles: number;

  constructor(fs: FsLayer, maxFiles = 1000) {
    this.#fs = fs;
    this.#maxFiles = maxFiles;
  }

  /** The parsed list, or undefined when there is no file or it is not a uidlist we understand. */
  async read(file: string): Promise<DovecotUidlist | undefined> {
    let handle;
    try {
      // O_NOFOLLOW: never read a file outside the tree through a planted symlink.
      handle = await this.#fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP') {
        this.#parsed.delete(file);
        return undefined;
      }
      throw err;
    }
    try {
      const st = await handle.stat();
      const stamp: Stamp = { mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, size: st.size, ino: st.ino };
      const known = this.#parsed.get(file);
      if (known !== undefined && sameStamp(known.stamp, stamp)) return known.list;
      const list = st.isFile() ? parseDovecotUidlist(await handle.readFile({ encoding: 'utf8' })) : undefined;
      this.#parsed.delete(file);
      this.#parsed.set(file, { stamp, list });
      if (this.#parsed.size > this.#maxFiles) {
        const oldest = this.#parsed.keys().next().value;
        if (oldest !== undefined) this.#parsed.delete(oldest);
      }
      return list;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
}

function sameStamp(a: Stamp, b: Stamp): boolean {
  return a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size && a.ino === b.ino;
}
