/**
 * What every password-scheme family module provides. A family (plain,
 * crypt, digest, argon2) answers to one or more Dovecot scheme names
 * (`{SHA512-CRYPT}`, `{SSHA256}`...) and verifies a stored value without
 * ever throwing: a broken stored value is a failed check with a reason the
 * caller can log, never an exception that could end a session.
 */

/** Why a check failed. Only 'mismatch' is the user's fault; the others are the operator's to fix. */
export type PasswordFailureReason =
  | 'mismatch' // well-formed hash, wrong password
  | 'unknown-scheme' // `{FOO}` that maildird does not implement
  | 'malformed-hash' // the stored value is not a valid value of its scheme
  | 'unsupported' // a valid value of a variant maildird does not implement (DES crypt, yescrypt)
  | 'no-password'; // empty password field: lookup-only user

export type PasswordCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: PasswordFailureReason; readonly detail: string };

/** How a stored digest is written: Dovecot's `.B64`/`.HEX` suffixes, or the scheme's default. */
export type StoredEncoding = 'base64' | 'hex';

/**
 * A scheme whose stored value is an encoding of raw bytes (digests, salted
 * digests, PLAIN): password.ts decodes the value as Dovecot's
 * password_decode() does (suffix, else the default encoding, with Dovecot's
 * hex guess for fixed-length digests) and hands over the bytes.
 */
export interface EncodedScheme {
  readonly kind: 'encoded';
  /** How the value is written without a suffix; 'text' means as it is (PLAIN). */
  readonly defaultEncoding: StoredEncoding | 'text';
  /** Raw length for unsalted digests (enables Dovecot's hex-or-base64 guess); undefined otherwise. */
  readonly rawLength?: number | undefined;
  /** Compare in constant time. Never throws. */
  verifyRaw(password: Buffer, raw: Buffer): PasswordCheck;
  /** New raw bytes (salt included) for `hashPassword`. */
  generateRaw?: ((password: Buffer) => Buffer) | undefined;
}

/** A scheme whose stored value is a text format of its own (crypt strings, PHC strings). */
export interface TextScheme {
  readonly kind: 'text';
  /** Check `password` (UTF-8 bytes) against `value`, the stored text after `{SCHEME}`. Never throws. */
  verify(password: Buffer, value: string): Promise<PasswordCheck>;
  /** A new stored value (without the `{SCHEME}` prefix). */
  generate?: ((password: Buffer) => Promise<string>) | undefined;
}

export type PasswordScheme = EncodedScheme | TextScheme;

export const MATCH: PasswordCheck = Object.freeze({ ok: true });

export function mismatch(detail = 'password mismatch'): PasswordCheck {
  return { ok: false, reason: 'mismatch', detail };
}

export function malformed(detail: string): PasswordCheck {
  return { ok: false, reason: 'malformed-hash', detail };
}

export function unsupported(detail: string): PasswordCheck {
  return { ok: false, reason: 'unsupported', detail };
}
