/**
 * The crypt(3) flavour of base64 used by MD5-crypt and SHA-crypt: alphabet
 * `./0-9A-Za-z`, groups of three bytes written least significant six bits
 * first, in a byte order each algorithm fixes.
 */
import { randomBytes } from 'node:crypto';

export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Encode `bytes` as crypt base64 following `order`: each entry is three
 * byte indexes (b2, b1, b0, -1 for a zero byte) and the number of output
 * characters, exactly as `b64_from_24bit` in the SHA-crypt spec.
 */
export function cryptBase64(bytes: Uint8Array, order: readonly (readonly [number, number, number, number])[]): string {
  let out = '';
  const at = (i: number): number => (i < 0 ? 0 : (bytes[i] ?? 0));
  for (const [i2, i1, i0, count] of order) {
    let w = (at(i2) << 16) | (at(i1) << 8) | at(i0);
    for (let n = 0; n < count; n++) {
      out += CRYPT_ALPHABET[w & 0x3f];
      w >>>= 6;
    }
  }
  return out;
}

/** A random salt of `length` characters from the crypt alphabet. */
export function randomCryptSalt(length: number): string {
  const bytes = randomBytes(length);
  let salt = '';
  // 256 is a multiple of 64: every character is equally likely.
  for (const byte of bytes) salt += CRYPT_ALPHABET[byte & 0x3f];
  return salt;
}
