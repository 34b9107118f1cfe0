/**
 * Dovecot's passwd-file format, so an existing Dovecot users file works as it is:
 *
 *     name:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields
 *
 * Fields after the password are optional and may be empty. Everything after
 * the seventh `:` is the extra fields, space-separated `key=value` (or bare
 * `key`) tokens, so they may themselves hold colons
 * (`userdb_quota_rule=*:storage=100M`). Lines starting with `#` and blank
 * lines are ignored.
 *
 * Parsing never throws: each bad line becomes an error with its line number
 * and reason, so the caller can refuse the whole file and log every line.
 *
 * The name on a line is the canonical user and, with the default layout,
 * a folder name under the mail root (DESIGN.md "Users", invariant 4): names
 * that could not be a single, visible folder are refused here, at the door.
 */
import { parseQuotaRule } from './quota-rule.js';
import { schemeName } from './password.js';

export interface ExtraField {
  readonly key: string;
  /** undefined for a bare flag (`nologin`). */
  readonly value: string | undefined;
}

/** What a line says, field by field (formatPasswdLine writes it back). */
export interface PasswdFields {
  readonly name: string;
  /** The stored password as written: `{SCHEME}value`, a bare crypt value, or '' (no password). */
  readonly password: string;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly gecos?: string | undefined;
  readonly home?: string | undefined;
  readonly shell?: string | undefined;
  readonly extraFields?: readonly ExtraField[] | undefined;
}

/** The user database view of a line, extra fields applied (`userdb_home`, quota rules, `nologin`). */
export interface UserdbFields {
  readonly home: string | undefined;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  /** Bytes, from `*:storage=`/`*:bytes=`; 0 unlimited; undefined: the store's default. */
  readonly quotaBytes: number | undefined;
  /** From `*:messages=`; 0 unlimited. */
  readonly quotaMessages: number | undefined;
  /** Dovecot's `nologin` passdb field: the user exists (mail is delivered) but cannot log in. */
  readonly nologin: boolean;
}

export interface PasswdEntry extends PasswdFields {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly gecos: string;
  readonly home: string;
  readonly shell: string;
  readonly extraFields: readonly ExtraField[];
  readonly userdb: UserdbFields;
}

export interface PasswdLineError {
  readonly line: number;
  readonly reason: string;
  /** The line's name field, when there was one to read. */
  readonly name?: string | undefined;
}

export interface PasswdWarning {
  readonly line: number;
  readonly message: string;
}

export interface PasswdFile {
  readonly entries: readonly PasswdEntry[];
  readonly errors: readonly PasswdLineError[];
  readonly warnings: readonly PasswdWarning[];
}

export type PasswdLine =
  | { readonly kind: 'blank' }
  | { readonly kind: 'comment' }
  | { readonly kind: 'entry'; readonly entry: PasswdEntry; readonly warnings: readonly string[] }
  | { readonly kind: 'error'; readonly reason: string; readonly name: string | undefined };

export interface ParseOptions {
  /** Treat names that differ only in case as the same user (duplicates are errors). */
  readonly caseInsensitive?: boolean;
}

const MAX_NAME_OCTETS = 255;
const MAX_ID = 0xffff_fffe; // (uid_t)-1 is "no change" to chown(2)

/** Passdb fields Dovecot honours that maildird does not: warn so nobody relies on them silently. */
const UNENFORCED_FIELDS = new Set(['allow_nets', 'allow_real_nets', 'nopassword', 'proxy', 'proxy_maybe', 'host', 'nodelay']);

/** Checks shared by a whole name, a local part and a domain: each may become a folder name. */
function folderProblem(part: string, what: string): string | undefined {
  if (part === '') return `empty ${what}`;
  if (part === '.' || part === '..') return `${what} "${part}" is reserved`;
  if (part.startsWith('.')) return `${what} starts with "."`;
  return undefined;
}

/**
 * Why `name` cannot be a user name, or undefined when it can. Refused: empty,
 * `.`/`..`, a leading `.`, `/`, `\`, NUL and other control characters,
 * whitespace, `:`, more than one `@`, over 255 octets. A name with one `@` is
 * a full address; its local part and domain obey the same folder rules.
 */
export function userNameProblem(name: string): string | undefined {
  const whole = folderProblem(name, 'name');
  if (whole !== undefined) return whole;
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_OCTETS) return `name longer than ${MAX_NAME_OCTETS} octets`;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'name contains a control character';
  if (/[\s\u2028\u2029\ufeff]/u.test(name)) return 'name contains whitespace';
  if (/[/\\]/.test(name)) return 'name contains a path separator';
  if (name.includes(':')) return 'name contains ":"';
  if (/[\ud800-\udfff]/.test(name.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) return 'name is not valid Unicode';
  const parts = name.split('@');
  if (parts.length > 2) return 'name contains more than one "@"';
  if (parts.length === 2) {
    return folderProblem(parts[0] ?? '', 'local part') ?? folderProblem(parts[1] ?? '', 'domain');
  }
  return undefined;
}

export function isValidUserName(name: string): boolean {
  return userNameProblem(name) === undefined;
}

/**
 * The key two spellings of one user share: the domain of a full address is
 * always case-insensitive (RFC 5321 section 2.4); the rest only when asked.
 */
export function userKey(name: string, caseInsensitive: boolean): string {
  const at = name.indexOf('@');
  if (at === -1) return caseInsensitive ? name.toLowerCase() : name;
  const local = name.slice(0, at);
  return `${caseInsensitive ? local.toLowerCase() : local}@${name.slice(at + 1).toLowerCase()}`;
}

function parseId(text: string, what: string): number | undefined | string {
  if (text === '') return undefined;
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_ID) return `${what} "${text}" is not a number from 0 to ${MAX_ID}`;
  return Number(text);
}

/** Split at the first seven colons: the eighth field keeps any colons of its own. */
function splitFields(text: string): string[] {
  const fields: string[] = [];
  let start = 0;
  while (fields.length < 7) {
    const colon = text.indexOf(':', start);
    if (colon === -1) break;
    fields.push(text.slice(start, colon));
    start = colon + 1;
  }
  fields.push(text.slice(start));
  return fields;
}

function parseExtraFields(text: string): ExtraField[] {
  const out: ExtraField[] = [];
  for (const token of text.split(/[ \t]+/)) {
    if (token === '') continue;
    const eq = token.indexOf('=');
    out.push(eq === -1 ? { key: token, value: undefined } : { key: token.slice(0, eq), value: token.slice(eq + 1) });
  }
  return out;
}

/** Apply the extra fields maildird understands; an error string for a value that is wrong. */
function deriveUserdb(
  columns: { home: string; uid: number | undefined; gid: number | undefined },
  extras: readonly ExtraField[],
  warnings: string[],
): UserdbFields | string {
  let { home, uid, gid } = columns as { home: string | undefined; uid: number | undefined; gid: number | undefined };
  let quotaBytes: number | undefined;
  let quotaMessages: number | undefined;
  let nologin = false;
  for (const { key, value } of extras) {
    if (key === '') return 'extra field with an empty key';
    if (key === 'userdb_home') {
      home = value;
    } else if (key === 'userdb_uid' || key === 'userdb_gid') {
      const id = parseId(value ?? '', key);
      if (typeof id === 'string') return id;
      if (key === 'userdb_uid') uid = id;
      else gid = id;
    } else if (/^(?:userdb_)?quota_rule\d*$/.test(key)) {
      const rule = parseQuotaRule(value ?? '');
      if (!rule.ok) return rule.reason;
      for (const note of rule.ignored) warnings.push(`ignored ${note}`);
      if (rule.limits.bytes !== undefined) quotaBytes = rule.limits.bytes;
      if (rule.limits.messages !== undefined) quotaMessages = rule.limits.messages;
    } else if (key === 'nologin') {
      nologin = true;
    } else if (UNENFORCED_FIELDS.has(key)) {
      warnings.push(`extra field ${key} is not enforced by maildird`);
    }
  }
  if (home === '') home = undefined;
  if (home !== undefined && !home.startsWith('/')) return `home "${home}" is not an absolute path`;
  if (home !== undefined && home.split('/').includes('..')) return `home "${home}" contains ".."`;
  return { home, uid, gid, quotaBytes, quotaMessages, nologin };
}

/** Parse one line (without its line end). */
export function parsePasswdLine(text: string, line: number): PasswdLine {
  if (text.trim() === '') return { kind: 'blank' };
  if (text.trimStart().startsWith('#')) return { kind: 'comment' };
  const fields = splitFields(text);
  const [name = '', password = '', uidText = '', gidText = '', gecos = '', home = '', shell = '', extra = ''] = fields;
  const error = (reason: string): PasswdLine => ({ kind: 'error', reason, name: name === '' ? undefined : name });
  const problem = userNameProblem(name);
  if (problem !== undefined) return error(problem);
  if (fields.length < 2) return error('no password field (expected name:{SCHEME}hash[:uid:gid:gecos:home:shell:extra])');
  const uid = parseId(uidText, 'uid');
  if (typeof uid === 'string') return error(uid);
  const gid = parseId(gidText, 'gid');
  if (typeof gid === 'string') return error(gid);
  const warnings: string[] = [];
  const extraFields = parseExtraFields(extra);
  const userdb = deriveUserdb({ home, uid, gid }, extraFields, warnings);
  if (typeof userdb === 'string') return error(userdb);
  if (password === '') warnings.push(`user ${name} has no password: lookup only, cannot log in`);
  else if (schemeName(password) === undefined) warnings.push(`user ${name}: unknown password scheme, cannot log in`);
  const entry: PasswdEntry = { line, name, password, uid, gid, gecos, home, shell, extraFields, userdb };
  return { kind: 'entry', entry, warnings };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Split file content into lines without their CRLF/LF ends; bytes are decoded per line so one bad line stays one error. */
function splitLines(content: string | Uint8Array): (string | undefined)[] {
  let lines: (string | undefined)[];
  if (typeof content === 'string') {
    lines = content.split('\n');
  } else {
    lines = [];
    let start = 0;
    while (start <= content.length) {
      let end = content.indexOf(0x0a, start);
      if (end === -1) end = content.length;
      try {
        lines.push(decoder.decode(content.subarray(start, end)));
      } catch {
        lines.push(undefined);
      }
      start = end + 1;
    }
  }
  // A final line end does not start another line.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i) => {
    if (l === undefined) return l;
    const text = l.endsWith('\r') ? l.slice(0, -1) : l;
    return i === 0 && text.startsWith('\ufeff') ? text.slice(1) : text;
  });
}

/** Parse a whole file. Never throws; duplicate users (by userKey) are errors on the later line. */
export function parsePasswdFile(content: string | Uint8Array, options: ParseOptions = {}): PasswdFile {
  const entries: PasswdEntry[] = [];
  const errors: PasswdLineError[] = [];
  const warnings: PasswdWarning[] = [];
  const seen = new Map<string, number>();
  splitLines(content).forEach((text, index) => {
    const line = index + 1;
    if (text === undefined) {
      errors.push({ line, reason: 'line is not valid UTF-8' });
      return;
    }
    const parsed = parsePasswdLine(text, line);
    if (parsed.kind === 'error') {
      errors.push({ line, reason: parsed.reason, name: parsed.name });
    } else if (parsed.kind === 'entry') {
      const key = userKey(parsed.entry.name, options.caseInsensitive ?? false);
      const first = seen.get(key);
      if (first !== undefined) {
        errors.push({ line, reason: `duplicate user ${parsed.entry.name} (first on line ${first})`, name: parsed.entry.name });
        return;
      }
      seen.set(key, line);
      entries.push(parsed.entry);
      for (const message of parsed.warnings) warnings.push({ line, message });
    }
  });
  return { entries, errors, warnings };
}

function checkField(value: string, what: string, allowColon: boolean): string {
  if (/[\r\n\0]/.test(value) || (!allowColon && value.includes(':'))) {
    throw new RangeError(`${what} cannot hold ${allowColon ? 'a line end' : '":" or a line end'}: ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * One passwd-file line (no line end) for `fields`; trailing empty fields
 * are left out. parsePasswdLine(formatPasswdLine(x)) gives x back. Throws
 * RangeError for a value the format cannot hold (a `:` in a column, a line
 * end anywhere, a space in an extra field, an invalid name).
 */
export function formatPasswdLine(fields: PasswdFields): string {
  const problem = userNameProblem(fields.name);
  if (problem !== undefined) throw new RangeError(problem);
  const extras = (fields.extraFields ?? []).map(({ key, value }) => {
    if (key === '' || /[\s=]/.test(key)) throw new RangeError(`bad extra field key ${JSON.stringify(key)}`);
    if (value !== undefined && /\s/.test(value)) throw new RangeError(`extra field ${key} cannot hold whitespace`);
    return value === undefined ? key : `${key}=${checkField(value, key, true)}`;
  });
  const columns = [
    fields.name,
    checkField(fields.password, 'password', false),
    fields.uid === undefined ? '' : String(fields.uid),
    fields.gid === undefined ? '' : String(fields.gid),
    checkField(fields.gecos ?? '', 'gecos', false),
    checkField(fields.home ?? '', 'home', false),
    checkField(fields.shell ?? '', 'shell', false),
    extras.join(' '),
  ];
  while (columns.length > 2 && columns[columns.length - 1] === '') columns.pop();
  return columns.join(':');
}
