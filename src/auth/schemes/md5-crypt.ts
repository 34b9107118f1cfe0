/**
 * MD5-crypt (`$1$salt$hash`), Poul-Henning Kamp's FreeBSD algorithm, as
 * Dovecot's password_generate_md5_crypt() and libxcrypt implement it. Weak
 * (1000 MD5 rounds); here so old /etc/shadow-derived files keep working.
 */
import { createHash } from 'node:crypto';
import { cryptBase64, randomCryptSalt } from './crypt-base64.js';

const MAGIC = '$1$';
const SALT_MAX = 8;

const ORDER: readonly (readonly [number, number, number, number])[] = [
  [0, 6, 12, 4], [1, 7, 13, 4], [2, 8, 14, 4], [3, 9, 15, 4], [4, 10, 5, 4], [-1, -1, 11, 2],
];

/** The salt of a `$1$` setting or hash: up to 8 characters, ending at `$`; undefined if not MD5-crypt. */
export function md5CryptSalt(setting: string): string | undefined {
  if (!setting.startsWith(MAGIC)) return undefined;
  const rest = setting.slice(MAGIC.length);
  const end = rest.indexOf('$');
  return (end === -1 ? rest : rest.slice(0, end)).slice(0, SALT_MAX);
}

/** True when `text` is a complete MD5-crypt hash. */
export function isMd5CryptHash(text: string): boolean {
  return /^\$1\$[^$]{0,8}\$[./0-9A-Za-z]{22}$/.test(text);
}

/** crypt(password, setting) for `$1$`; undefined when `setting` is not MD5-crypt. */
export function md5Crypt(password: Uint8Array, setting: string): string | undefined {
  const saltText = md5CryptSalt(setting);
  if (saltText === undefined) return undefined;
  const pw = Buffer.from(password);
  const salt = Buffer.from(saltText, 'utf8');

  const alternate = createHash('md5').update(pw).update(salt).update(pw).digest();
  const ctx = createHash('md5').update(pw).update(MAGIC).update(salt);
  for (let left = pw.length; left > 0; left -= 16) ctx.update(alternate.subarray(0, Math.min(left, 16)));
  // The original's odd quirk: a zero byte for set bits, the first password byte for clear ones.
  for (let bits = pw.length; bits > 0; bits >>= 1) ctx.update((bits & 1) !== 0 ? Buffer.of(0) : pw.subarray(0, 1));
  let final = ctx.digest();

  for (let i = 0; i < 1000; i++) {
    const round = createHash('md5');
    round.update((i & 1) !== 0 ? pw : final);
    if (i % 3 !== 0) round.update(salt);
    if (i % 7 !== 0) round.update(pw);
    round.update((i & 1) !== 0 ? final : pw);
    final = round.digest();
  }
  return `${MAGIC}${saltText}$${cryptBase64(final, ORDER)}`;
}

export function newMd5CryptSetting(): string {
  return `${MAGIC}${randomCryptSalt(SALT_MAX)}`;
}
