/**
 * Stored passwords in Dovecot's `{SCHEME}value` form: verify and generate.
 *
 * A value without `{SCHEME}` is read as Dovecot's passwd-file reads it: a
 * `$1$` value is MD5-CRYPT (Dovecot's password_get_scheme() special case)
 * and anything else takes the default scheme, CRYPT (passwd-file's
 * default_pass_scheme), which verifies `$6$`, `$5$`, `$1$` and `$2y$`
 * values: so lines copied from /etc/shadow, mkpasswd or htpasswd work.
 *
 * Verification never throws: an unknown scheme or a broken value is a
 * failed check with a reason (PasswordCheck) that the caller logs for the
 * operator, while the client sees a plain authentication failure.
 */
import { ConfigError } from '../errors.js';
import { decodeHex, decodeStoredBase64 } from './schemes/compare.js';
import { lookupScheme, supportedSchemes } from './schemes/index.js';
import type { EncodedScheme, PasswordCheck, StoredEncoding } from './schemes/scheme.js';

export type { PasswordCheck, PasswordFailureReason } from './schemes/scheme.js';
export { supportedSchemes, generatableSchemes } from './schemes/index.js';

/** The scheme of a stored value that has no `{SCHEME}` prefix (Dovecot passwd-file's default). */
export const DEFAULT_STORED_SCHEME = 'CRYPT';
/** The scheme new passwords get. */
export const DEFAULT_NEW_SCHEME = 'ARGON2ID';

export interface StoredPasswordParts {
  /** The scheme text as written (`SHA256.HEX`, `plain`), or the default. */
  readonly scheme: string;
  /** What follows `{SCHEME}`. */
  readonly value: string;
  /** True when the stored value named its scheme. */
  readonly explicit: boolean;
}

export interface PasswordOptions {
  /** Scheme for values without `{SCHEME}`; default CRYPT (Dovecot passwd-file's default). */
  readonly defaultScheme?: string;
}

/** Split `{SCHEME}value` as Dovecot's password_get_scheme() does. */
export function splitStoredPassword(stored: string, defaultScheme = DEFAULT_STORED_SCHEME): StoredPasswordParts {
  if (stored.startsWith('{')) {
    const end = stored.indexOf('}');
    if (end !== -1) return { scheme: stored.slice(1, end), value: stored.slice(end + 1), explicit: true };
  }
  if (stored.startsWith('$1$')) return { scheme: 'MD5-CRYPT', value: stored, explicit: false };
  return { scheme: defaultScheme, value: stored, explicit: false };
}

/** Dovecot's password_decode(): suffix, else default encoding, with its hex guess for fixed-length digests. */
function decodeValue(scheme: EncodedScheme, value: string, suffix: StoredEncoding | undefined): Buffer | string {
  let encoding: StoredEncoding | 'text' = suffix ?? scheme.defaultEncoding;
  const guessed = suffix === undefined && scheme.rawLength !== undefined && encoding !== 'text';
  if (guessed) encoding = value.length === (scheme.rawLength ?? 0) * 2 ? 'hex' : 'base64';
  let raw: Buffer | undefined;
  switch (encoding) {
    case 'text':
      raw = Buffer.from(value, 'utf8');
      break;
    case 'hex':
      // Some lengths are both valid hex and valid base64: fall back as Dovecot does.
      raw = decodeHex(value) ?? (guessed ? decodeStoredBase64(value) : undefined);
      break;
    case 'base64':
      raw = decodeStoredBase64(value);
      break;
  }
  if (raw === undefined) return `value is not valid ${encoding}`;
  if (scheme.rawLength !== undefined && raw.length !== scheme.rawLength) {
    return `value is ${raw.length} bytes, expected ${scheme.rawLength}`;
  }
  return raw;
}

const toBytes = (password: string | Uint8Array): Buffer =>
  typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);

/** Check `password` against a stored value, with the reason when it fails. Never throws. */
export async function checkPassword(
  stored: string,
  password: string | Uint8Array,
  options: PasswordOptions = {},
): Promise<PasswordCheck> {
  const parts = splitStoredPassword(stored, options.defaultScheme);
  // An empty field (or `{PLAIN}` with nothing after it) is a lookup-only
  // user: nobody logs in as them, not even with an empty password.
  if (parts.value === '') {
    return { ok: false, reason: 'no-password', detail: 'the users file has no password for this user' };
  }
  const found = lookupScheme(parts.scheme);
  if (found === undefined) {
    return { ok: false, reason: 'unknown-scheme', detail: `unknown password scheme {${parts.scheme}}` };
  }
  const bytes = toBytes(password);
  try {
    if (found.scheme.kind === 'text') return await found.scheme.verify(bytes, parts.value);
    const raw = decodeValue(found.scheme, parts.value, found.encoding);
    if (typeof raw === 'string') return { ok: false, reason: 'malformed-hash', detail: `{${found.name}} ${raw}` };
    return found.scheme.verifyRaw(bytes, raw);
  } catch (err) {
    // Belt and braces: the families do not throw, but a library might.
    return { ok: false, reason: 'malformed-hash', detail: `{${found.name}} check failed: ${(err as Error).message}` };
  }
}

/** True when `password` matches the stored value. Never throws; see checkPassword for the reason. */
export async function verifyPassword(stored: string, password: string | Uint8Array, options?: PasswordOptions): Promise<boolean> {
  return (await checkPassword(stored, password, options)).ok;
}

/**
 * A new stored value `{SCHEME}...` for `password`. Throws ConfigError for a
 * scheme maildird cannot generate (a caller's or operator's mistake).
 */
export async function hashPassword(password: string | Uint8Array, scheme = DEFAULT_NEW_SCHEME): Promise<string> {
  const found = lookupScheme(scheme);
  const label = scheme.toUpperCase();
  if (found === undefined) {
    throw new ConfigError(`unknown password scheme ${scheme} (known: ${supportedSchemes().join(', ')})`, { key: 'scheme' });
  }
  const bytes = toBytes(password);
  if (found.scheme.kind === 'text') {
    if (found.scheme.generate === undefined) throw new ConfigError(`scheme ${label} can only be verified`, { key: 'scheme' });
    return `{${label}}${await found.scheme.generate(bytes)}`;
  }
  if (found.scheme.generateRaw === undefined) throw new ConfigError(`scheme ${label} can only be verified`, { key: 'scheme' });
  const raw = found.scheme.generateRaw(bytes);
  const encoding = found.encoding ?? found.scheme.defaultEncoding;
  if (encoding === 'text') {
    const text = raw.toString('utf8');
    // The value must survive a passwd-file line: no field separator, no line end.
    if (/[:\r\n\0]/.test(text)) throw new ConfigError(`password holds ":" or a line end: use ${found.name}.B64`, { key: 'scheme' });
    return `{${label}}${text}`;
  }
  return `{${label}}${raw.toString(encoding)}`;
}

/**
 * The shared secret of a PLAIN-family stored value (`{PLAIN}`, `{CLEAR}`,
 * `{CLEARTEXT}`, with `.B64`/`.HEX`), for APOP and CRAM-MD5; undefined for
 * every hash (a hash cannot serve as the secret).
 */
export function sharedSecret(stored: string, options: PasswordOptions = {}): Buffer | undefined {
  const parts = splitStoredPassword(stored, options.defaultScheme);
  const found = lookupScheme(parts.scheme);
  if (found === undefined || found.scheme.kind !== 'encoded' || !['PLAIN', 'CLEAR', 'CLEARTEXT'].includes(found.name)) {
    return undefined;
  }
  const raw = decodeValue(found.scheme, parts.value, found.encoding);
  return typeof raw === 'string' || raw.length === 0 ? undefined : raw;
}

/** Upper-case scheme name of a stored value, without suffix (for logs and `user list`); undefined if unknown. */
export function schemeName(stored: string, options: PasswordOptions = {}): string | undefined {
  return lookupScheme(splitStoredPassword(stored, options.defaultScheme).scheme)?.name;
}
