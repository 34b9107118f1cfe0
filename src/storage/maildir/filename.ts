/**
 * Maildir file names: parse, derive UIDLs, make unique names. Pure (no I/O).
 *
 * A Maildir message name is `<base>[<sep><info>]` (https://cr.yp.to/proto/maildir.html):
 * the base is the unique name, optionally followed by Courier/Dovecot fields
 * `,S=<stored size>` and `,W=<wire size>`; the info is `2,<flags>` (flags in
 * ASCII order) or `1,<experimental>`. The separator is `:` by the spec; `;`
 * and `!` are used on file systems that cannot hold `:` (Windows, some
 * network shares), so we read all three by default.
 */
import { createHash } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { performance } from 'node:perf_hooks';

export const DEFAULT_INFO_SEPARATORS: readonly string[] = [':', ';', '!'];

export interface ParsedMaildirName {
  /** The whole file name. */
  readonly name: string;
  /** The name before the info (`<sep>2,...`): the message's identity. */
  readonly base: string;
  /** The info separator found (`:`, `;` or `!`), if the name has an info. */
  readonly separator: string | undefined;
  /** The info after the separator (`2,FRS`), if any. */
  readonly info: string | undefined;
  /** Flag letters after `2,` (empty when there are none or the info is not `2,`). */
  readonly flags: string;
  /** `,S=` in the base: the stored file size. */
  readonly size?: number;
  /** `,W=` in the base: the size on the wire (CRLF line ends). */
  readonly wireSize?: number;
  /** Leading `<seconds>.` of the base. */
  readonly seconds?: number;
  /** `M<usec>` in the delivery identifier after the seconds. */
  readonly usec?: number;
}

/**
 * Parse a file name found in `cur/` or `new/`. Returns undefined for names
 * that are not messages: empty names and dot files (`.keep`, `.nfs...`,
 * temporary files of other programs), and names whose base would be empty.
 */
export function parseMaildirName(
  name: string,
  separators: readonly string[] = DEFAULT_INFO_SEPARATORS,
): ParsedMaildirName | undefined {
  if (name.length === 0 || name.startsWith('.') || name.includes('/') || name.includes('\0')) return undefined;
  const infoAt = findInfo(name, separators);
  const base = infoAt < 0 ? name : name.slice(0, infoAt);
  if (base.length === 0) return undefined;
  const separator = infoAt < 0 ? undefined : name.charAt(infoAt);
  const info = infoAt < 0 ? undefined : name.slice(infoAt + 1);
  const flags = info !== undefined && info.startsWith('2,') ? info.slice(2) : '';
  const parsed: {
    -readonly [K in keyof ParsedMaildirName]: ParsedMaildirName[K];
  } = { name, base, separator, info, flags };
  const size = sizeField(base, 'S');
  if (size !== undefined) parsed.size = size;
  const wireSize = sizeField(base, 'W');
  if (wireSize !== undefined) parsed.wireSize = wireSize;
  const time = leadingTime(base);
  if (time.seconds !== undefined) parsed.seconds = time.seconds;
  if (time.usec !== undefined) parsed.usec = time.usec;
  return parsed;
}

/**
 * Position of the info separator: the first separator character followed
 * by `2,` or `1,` (`name:2,` with no flags is still an info). A separator
 * without that (a `!` or `;` that is simply part of a foreign name) belongs
 * to the base.
 */
function findInfo(name: string, separators: readonly string[]): number {
  for (let i = 0; i < name.length - 2; i++) {
    const c = name.charAt(i);
    if (!separators.includes(c)) continue;
    const next = name.charCodeAt(i + 1);
    if ((next === 0x32 /* 2 */ || next === 0x31) /* 1 */ && name.charCodeAt(i + 2) === 0x2c /* , */) return i;
  }
  return -1;
}

/** `,S=123` / `,W=456` as written by Courier and Dovecot; the value runs to the next `,` or the end. */
function sizeField(base: string, key: 'S' | 'W'): number | undefined {
  const marker = `,${key}=`;
  let from = 0;
  for (;;) {
    const at = base.indexOf(marker, from);
    if (at < 0) return undefined;
    let end = at + marker.length;
    while (end < base.length && isDigit(base.charCodeAt(end))) end++;
    const digits = base.slice(at + marker.length, end);
    if (digits.length > 0 && digits.length <= 15 && (end === base.length || base.charAt(end) === ',')) {
      return Number(digits);
    }
    from = at + 1;
  }
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** Leading `<seconds>.` and the `M<usec>` of the delivery identifier that follows it. */
function leadingTime(base: string): { seconds?: number; usec?: number } {
  let i = 0;
  while (i < base.length && isDigit(base.charCodeAt(i))) i++;
  if (i === 0 || i > 15 || (i < base.length && base.charAt(i) !== '.')) return {};
  const seconds = Number(base.slice(0, i));
  const idEnd = base.indexOf('.', i + 1);
  const id = base.slice(i + 1, idEnd < 0 ? base.length : idEnd);
  // Delivery identifiers are `M<usec>P<pid>Q<n>`, `P<pid>V<dev>I<ino>M<usec>`,
  // `R<hex>...` or the old `<pid>` / `<pid>_<n>`: M is never a hex digit, so
  // the first `M` followed by digits is the microseconds.
  const m = /M(\d{1,6})(?!\d)/.exec(id);
  return m?.[1] === undefined ? { seconds } : { seconds, usec: Number(m[1]) };
}

/** RFC 1939 section 7: a unique-id is 1-70 characters in 0x21-0x7E. */
function isPlainUidl(bytes: Uint8Array): boolean {
  if (bytes.length < 1 || bytes.length > 70) return false;
  for (const b of bytes) if (b < 0x21 || b > 0x7e) return false;
  return true;
}

/** `~` + the first 40 hex digits of SHA-256 of `bytes`: 41 octets, always a valid unique-id. */
export function hashedUidl(bytes: string | Uint8Array): string {
  return `~${createHash('sha256').update(bytes).digest('hex').slice(0, 40)}`;
}

/**
 * DESIGN "Identity": the base name itself when it is a valid unique-id, else
 * its hash. A string is taken as its UTF-8 bytes (how Node names files).
 */
export function uidlFromBase(base: string | Buffer): string {
  const bytes = typeof base === 'string' ? Buffer.from(base, 'utf8') : base;
  return isPlainUidl(bytes) ? bytes.toString('latin1') : hashedUidl(bytes);
}

/** UIDL of a flat-folder message: its name without `.eml`, with the same fallback. */
export function flatUidl(name: string): string {
  return uidlFromBase(name.endsWith('.eml') ? name.slice(0, -4) : name);
}

/** Base name `<unique>,S=<stored>,W=<wire>` for a message delivered into `new/`. */
export function deliveredName(unique: string, storedSize: number, wireSize: number): string {
  return `${unique},S=${storedSize},W=${wireSize}`;
}

/**
 * The name with the Seen flag: `S` inserted into the `2,` flags in ASCII
 * order (the Maildir spec requires sorted flags), or `<separator>2,S`
 * appended when the name has no info. The name's own separator wins over
 * `separator`. A name with experimental `1,` info is returned unchanged.
 */
export function withSeenFlag(name: string, separator: string): string {
  const parsed = parseMaildirName(name, [...new Set([separator, ...DEFAULT_INFO_SEPARATORS])]);
  if (parsed === undefined || parsed.info === undefined) return `${name}${separator}2,S`;
  if (!parsed.info.startsWith('2,')) return name;
  if (parsed.flags.includes('S')) return name;
  const flags = [...parsed.flags, 'S'].sort().join('');
  return `${parsed.base}${parsed.separator ?? separator}2,${flags}`;
}

export interface UniqueNameOptions {
  /** Host part before sanitising; default os.hostname(). */
  readonly hostname?: string;
  /** Default process.pid. */
  readonly pid?: number;
}

export interface NameTime {
  readonly seconds: number;
  readonly usec: number;
}

/** One counter per process, shared by every generator, so two generators never collide. */
let processCounter = 0;

/**
 * Unique names `<seconds>.M<usec>P<pid>Q<counter>.<host>` as the Maildir
 * spec describes: seconds and microseconds of the delivery, the process id
 * and a per-process delivery counter, so names from one process never repeat
 * and names from different processes or hosts differ.
 */
export class UniqueNameGenerator {
  readonly #pid: number;
  readonly #host: string;

  constructor(options: UniqueNameOptions = {}) {
    this.#pid = options.pid ?? process.pid;
    this.#host = sanitizeHost(options.hostname ?? osHostname());
  }

  get host(): string {
    return this.#host;
  }

  next(now: NameTime = currentTime()): string {
    processCounter += 1;
    return `${now.seconds}.M${now.usec}P${this.#pid}Q${processCounter}.${this.#host}`;
  }
}

function currentTime(): NameTime {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return { seconds, usec: Math.min(999_999, Math.floor((ms - seconds * 1000) * 1000)) };
}

/**
 * The Maildir spec: replace `/` with `\057` and `:` with `\072` in the host
 * name. We also escape `,` `;` `!` (our size fields and info separators)
 * and every octet outside 0x21-0x7E, so the name stays a valid unique-id.
 */
export function sanitizeHost(host: string): string {
  let out = '';
  for (const byte of Buffer.from(host, 'utf8')) {
    const isSpecial = byte === 0x2f || byte === 0x3a || byte === 0x2c || byte === 0x3b || byte === 0x21;
    if (isSpecial || byte < 0x21 || byte > 0x7e) out += `\\${byte.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(byte);
  }
  return out.length > 0 ? out : 'localhost';
}
