/**
 * Constant-time comparisons and the strict decoders the scheme families
 * share. `timingSafeEqual` needs equal lengths; where a length could tell an
 * attacker something (plaintext passwords), both sides are hashed first so
 * the comparison always runs over 32 bytes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Equal-length buffers compared in constant time; different lengths are unequal (the length is not secret here). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Compare two secrets of any length without leaking where, or whether in length, they differ. */
export function equalSecrets(a: Uint8Array, b: Uint8Array): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  // Both the digest comparison and the length check always run.
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** Compare two ASCII strings (crypt outputs, hex digests) in constant time for a given length. */
export function equalStrings(a: string, b: string): boolean {
  return equalBytes(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Decode stored base64 as Dovecot does: the standard alphabet, padding
 * optional; whitespace or other characters make it invalid (undefined).
 */
export function decodeStoredBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64');
}

export function decodeHex(text: string): Buffer | undefined {
  return HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
}
