/**
 * The crypt(3) family. Dovecot verifies `{CRYPT}`, `{SHA512-CRYPT}`,
 * `{SHA256-CRYPT}`, `{MD5-CRYPT}` and `{BLF-CRYPT}` all the same way, by
 * calling crypt(3) with the stored value as the setting, so the scheme name
 * only matters when generating: a `$5$` value under `{SHA512-CRYPT}` still
 * verifies. We do the same, choosing the algorithm by the value's prefix:
 * `$6$`/`$5$` SHA-crypt, `$1$` MD5-crypt, `$2a$`/`$2b$`/`$2y$` bcrypt.
 * Other crypt(3) formats libxcrypt knows (yescrypt `$y$`, scrypt `$7$`,
 * traditional DES) are reported as unsupported, never as a wrong password.
 *
 * `{MD5}` is Dovecot's historical alias: MD5-crypt when the value starts
 * with `$1$`, else a PLAIN-MD5 digest (hex, or base64).
 */
import { createHash } from 'node:crypto';
import { generateBcrypt, isBcryptHash, verifyBcrypt } from './bcrypt.js';
import { decodeHex, decodeStoredBase64, equalBytes, equalStrings } from './compare.js';
import { isMd5CryptHash, md5Crypt, newMd5CryptSetting } from './md5-crypt.js';
import { MATCH, malformed, mismatch, unsupported, type PasswordCheck, type TextScheme } from './scheme.js';
import { isShaCryptHash, newShaCryptSetting, shaCrypt } from './sha-crypt.js';

/** Name a crypt(3) value's algorithm for messages; undefined when it is no crypt value at all. */
function describeUnsupported(value: string): string | undefined {
  if (value.startsWith('$y$')) return 'yescrypt ($y$)';
  if (value.startsWith('$gy$')) return 'gost-yescrypt ($gy$)';
  if (value.startsWith('$7$')) return 'scrypt ($7$)';
  if (value.startsWith('$sha1$')) return 'SHA1-crypt ($sha1$)';
  if (value.startsWith('$md5')) return 'SunMD5 ($md5$)';
  if (value.startsWith('_')) return 'BSDi extended DES';
  if (/^[./0-9A-Za-z]{13}$/.test(value)) return 'traditional DES crypt';
  const id = /^\$[0-9a-z]{1,8}\$/.exec(value);
  return id === null ? undefined : `crypt format ${id[0]}`;
}

/** Verify any supported crypt(3) value, whatever `{...-CRYPT}` name it was stored under. */
export async function verifyCrypt(password: Uint8Array, value: string): Promise<PasswordCheck> {
  if (value.startsWith('$5$') || value.startsWith('$6$')) {
    if (!isShaCryptHash(value)) return malformed('not a complete SHA-crypt hash');
    const computed = await shaCrypt(password, value);
    return computed !== undefined && equalStrings(computed, value) ? MATCH : mismatch();
  }
  if (value.startsWith('$1$')) {
    if (!isMd5CryptHash(value)) return malformed('not a complete MD5-crypt hash');
    const computed = md5Crypt(password, value);
    return computed !== undefined && equalStrings(computed, value) ? MATCH : mismatch();
  }
  if (isBcryptHash(value)) return verifyBcrypt(password, value);
  if (/^\$2[abxy]\$/.test(value)) return malformed('not a complete bcrypt hash');
  const other = describeUnsupported(value);
  if (other !== undefined) return unsupported(`${other} is not supported`);
  return value === '' ? malformed('empty crypt value') : malformed('not a crypt(3) value');
}

function cryptScheme(generate: (password: Buffer) => Promise<string>): TextScheme {
  return { kind: 'text', verify: verifyCrypt, generate };
}

const sha512Crypt = cryptScheme(async (pw) => (await shaCrypt(pw, newShaCryptSetting('6'))) ?? '');
const blfCrypt = cryptScheme((pw) => generateBcrypt(pw));

/** `{MD5}`: MD5-crypt or a PLAIN-MD5 digest, as Dovecot's md5_verify(). */
const md5Scheme: TextScheme = {
  kind: 'text',
  async verify(password, value) {
    if (value.startsWith('$1$')) return verifyCrypt(password, value);
    // PLAIN-MD5 decoding: 32 characters are hex, anything else base64.
    const raw = value.length === 32 ? (decodeHex(value) ?? decodeStoredBase64(value)) : decodeStoredBase64(value);
    if (raw?.length !== 16) return malformed('not a valid MD5-CRYPT or PLAIN-MD5 value');
    return equalBytes(createHash('md5').update(password).digest(), raw) ? MATCH : mismatch();
  },
  async generate(password) {
    return md5Crypt(password, newMd5CryptSetting()) ?? '';
  },
};

export const cryptSchemes: Readonly<Record<string, TextScheme>> = {
  // Debian's Dovecot generates bcrypt for {CRYPT}; so do we.
  CRYPT: blfCrypt,
  'SHA512-CRYPT': sha512Crypt,
  'SHA256-CRYPT': cryptScheme(async (pw) => (await shaCrypt(pw, newShaCryptSetting('5'))) ?? ''),
  'MD5-CRYPT': cryptScheme(async (pw) => md5Crypt(pw, newMd5CryptSetting()) ?? ''),
  'BLF-CRYPT': blfCrypt,
  'DES-CRYPT': { kind: 'text', verify: verifyCrypt },
  MD5: md5Scheme,
};
