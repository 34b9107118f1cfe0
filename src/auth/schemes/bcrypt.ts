/**
 * bcrypt (`$2y$`, `$2b$`, `$2a$`: Dovecot's BLF-CRYPT, htpasswd -B,
 * mkpasswd -m bcrypt) computed by hash-wasm's WebAssembly Blowfish (no
 * native add-on). The comparison is ours and constant-time: hash-wasm's own
 * bcryptVerify compares strings with `===`.
 *
 * bcrypt keys on at most 72 bytes of the password followed by a NUL; every
 * implementation silently ignores the rest, and so do we (a 100-byte
 * password verifies against a hash of its first 72 bytes). `$2a$`, `$2b$`
 * and `$2y$` differ only for passwords of 256 bytes and more (an OpenBSD
 * counter overflow), which the 72-byte cut makes moot. `$2x$` (crypt_blowfish's
 * sign-extension bug compatibility) is refused as unsupported.
 */
import { randomBytes } from 'node:crypto';
import { bcrypt } from 'hash-wasm';
import { equalStrings } from './compare.js';
import { MATCH, malformed, mismatch, unsupported, type PasswordCheck } from './scheme.js';

const BCRYPT = /^\$2([abxy])\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const MAX_KEY_BYTES = 72;
/** Cost for new hashes: 2^10 rounds (htpasswd's -C 10; Dovecot's default of 5 is dated). */
export const BCRYPT_DEFAULT_COST = 10;

export function isBcryptHash(text: string): boolean {
  return BCRYPT.test(text);
}

/** bcrypt's base64 uses the standard bit layout with another alphabet. */
function decodeSalt(text: string): Buffer {
  let standard = '';
  for (const ch of text) standard += BASE64_ALPHABET[BCRYPT_ALPHABET.indexOf(ch)];
  return Buffer.from(standard, 'base64').subarray(0, 16);
}

/** The key bytes as bcrypt uses them; see the module comment about 72 bytes and the empty password. */
function keyOf(password: Uint8Array): Uint8Array {
  // hash-wasm appends the NUL itself and refuses an empty password; the key
  // stream of "" + NUL is all zero bytes, exactly that of "\0" + NUL.
  if (password.length === 0) return Uint8Array.of(0);
  return password.subarray(0, MAX_KEY_BYTES);
}

export async function verifyBcrypt(password: Uint8Array, stored: string): Promise<PasswordCheck> {
  const m = BCRYPT.exec(stored);
  if (m === null) return malformed('not a bcrypt hash ($2y$NN$ + 53 characters)');
  const [, minor, costText, saltText, hashText] = m as unknown as [string, string, string, string, string];
  if (minor === 'x') return unsupported('bcrypt $2x$ (crypt_blowfish bug compatibility) is not supported');
  const cost = Number(costText);
  if (cost < 4 || cost > 31) return malformed(`bcrypt cost ${cost} outside 4..31`);
  let encoded: string;
  try {
    encoded = await bcrypt({
      password: keyOf(password),
      salt: decodeSalt(saltText),
      costFactor: cost,
      outputType: 'encoded',
    });
  } catch (err) {
    return unsupported(`bcrypt failed: ${(err as Error).message}`);
  }
  return equalStrings(encoded.slice(-31), hashText) ? MATCH : mismatch();
}

/** A new `$2y$` hash (the prefix Dovecot and htpasswd write). */
export async function generateBcrypt(password: Uint8Array, cost = BCRYPT_DEFAULT_COST): Promise<string> {
  const encoded = await bcrypt({ password: keyOf(password), salt: randomBytes(16), costFactor: cost, outputType: 'encoded' });
  return `$2y$${encoded.slice(4)}`;
}
