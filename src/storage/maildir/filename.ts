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
  readonly size?: number | undefined;
  /** `,W=` in the base: the size on the wire (CRLF line ends). */
  readonly wireSize?: number | undefined;
  /** Leading `<seconds>.` of the base. */
  readonly seconds?: number | undefined;
  /** `M<usec>` in the delivery identifier after the seconds. */
  readonly usec?: number | undefined;
}

/**
 * Parse a file name found in `cur/` or `new/`. Returns undefined for names
 * that are not messages: empty names and dot files (`.keep`, `.nfs...`,
 * temporary files of other programs), and names whose base would be empty.
 *
 * Hot path (a listing parses every name): no regular expressions, no
 * substrings but the base, and one result object of a fixed shape.
 */
export function parseMaildirName(
  name: string,
  separators: readonly string[] = DEFAULT_INFO_SEPARATORS,
): ParsedMaildirName | undefined {
  if (name.length === 0 || name.charCodeAt(0) === 0x2e /* . */ || name.includes('/') || name.includes('\0')) {
    return undefined;
  }
  const infoAt = findInfo(name, separators);
  const baseEnd = infoAt < 0 ? name.length : infoAt;
  if (baseEnd === 0) return undefined;
  const base = infoAt < 0 ? name : name.slice(0, infoAt);
  const info = infoAt < 0 ? undefined : name.slice(infoAt + 1);
  const seconds = leadingSeconds(base);
  return {
    name,
    base,
    separator: infoAt < 0 ? undefined : name.charAt(infoAt),
    info,
    flags: info !== undefined && info.startsWith('2,') ? info.slice(2) : '',
    size: sizeField(base, ',S='),
    wireSize: sizeField(base, ',W='),
    seconds,
    usec: seconds === undefined ? undefined : microseconds(base),
  };
}

/**
 * Position of the info separator: the first separator character followed
 * by `2,` or `1,` (`name:2,` with no flags is still an info). A separator
 * without that (a `!` or `;` that is simply part of a foreign name) belongs
 * to the base.
 */
function findInfo(name: string, separators: readonly string[]): number {
  let best = -1;
  for (const sep of separators) {
    let at = name.indexOf(sep);
    while (at >= 0 && (best < 0 || at < best)) {
      const next = name.charCodeAt(at + 1);
      if ((next === 0x32 /* 2 */ || next === 0x31) /* 1 */ && name.charCodeAt(at + 2) === 0x2c /* , */) {
        best = at;
        break;
      }
      at = name.indexOf(sep, at + 1);
    }
  }
  return best;
}

/** `,S=123` / `,W=456` as written by Courier and Dovecot; the value runs to the next `,` or the end. */
function sizeField(base: string, marker: ',S=' | ',W='): number | undefined {
  let at = base.indexOf(marker);
  while (at >= 0) {
    let end = at + 3;
    let value = 0;
    while (end < base.length && end - at - 3 < 15 && isDigit(base.charCodeAt(end))) {
      value = value * 10 + base.charCodeAt(end) - 0x30;
      end++;
    }
    if (end > at + 3 && (end === base.length || base.charCodeAt(end) === 0x2c /* , */)) return value;
    at = base.indexOf(marker, at + 1);
  }
  return undefined;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** Leading `<seconds>` followed by `.` or the end of the base. */
function leadingSeconds(base: string): number | undefined {
  let i = 0;
  let value = 0;
  while (i < base.length && i < 16 && isDigit(base.charCodeAt(i))) {
    value = value * 10 + base.charCodeAt(i) - 0x30;
    i++;
  }
  if (i === 0 || i > 15 || (i < base.length && base.charCodeAt(i) !== 0x2e)) return undefined;
  return value;
}

/**
 * `M<usec>` in the delivery identifier (between the first and second `.`).
 * Identifiers are `M<usec>P<pid>Q<n>`, `P<pid>V<dev>I<ino>M<usec>`,
 * `R<hex>...` or the old `<pid>` / `<pid>_<n>`: M is never a hex digit, so
 * the first `M` followed by 1-6 digits (and no seventh) is the microseconds.
 */
function microseconds(base: string): number | undefined {
  const start = base.indexOf('.');
  if (start < 0) return undefined;
  let end = base.indexOf('.', start + 1);
  if (end < 0) end = base.length;
  for (let at = base.indexOf('M', start + 1); at >= 0 && at < end; at = base.indexOf('M', at + 1)) {
    let i = at + 1;
    let value = 0;
    while (i < end && isDigit(base.charCodeAt(i))) {
      value = value * 10 + base.charCodeAt(i) - 0x30;
      i++;
    }
    const digits = i - at - 1;
    if (digits >= 1 && digits <= 6) return value;
  }
  return undefined;
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
  if (typeof base === 'string') {
    // Hot path: an ASCII string is its own bytes, no Buffer needed.
    if (isPlainUidlString(base)) return base;
    return hashedUidl(Buffer.from(base, 'utf8'));
  }
  return isPlainUidl(base) ? base.toString('latin1') : hashedUidl(base);
}

function isPlainUidlString(s: string): boolean {
  if (s.length < 1 || s.length > 70) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
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
