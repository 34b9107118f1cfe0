/**
 * The digest family, as Dovecot's password-scheme.c defines it:
 * - unsalted: SHA (= SHA1), SHA256, SHA512 (base64 by default), PLAIN-MD5
 *   (hex by default), LDAP-MD5 (base64 MD5);
 * - salted: SSHA, SSHA256, SSHA512, SMD5, stored as base64(digest || salt)
 *   where digest = H(password || salt) and the salt is whatever follows the
 *   digest (Dovecot writes 4 bytes; any length of at least one is read).
 * Unsalted digests are weak; they are here so existing files keep working.
 */
import { createHash, randomBytes } from 'node:crypto';
import { equalBytes } from './compare.js';
import { MATCH, malformed, mismatch, type EncodedScheme, type StoredEncoding } from './scheme.js';

type Algorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

const DIGEST_LENGTH: Readonly<Record<Algorithm, number>> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

/** Salt length for new salted digests (Dovecot uses 4; more costs nothing). */
const NEW_SALT_LENGTH = 8;

function unsalted(algorithm: Algorithm, defaultEncoding: StoredEncoding): EncodedScheme {
  return {
    kind: 'encoded',
    defaultEncoding,
    rawLength: DIGEST_LENGTH[algorithm],
    verifyRaw(password, raw) {
      const digest = createHash(algorithm).update(password).digest();
      return equalBytes(digest, raw) ? MATCH : mismatch();
    },
    generateRaw(password) {
      return createHash(algorithm).update(password).digest();
    },
  };
}

function salted(algorithm: Algorithm): EncodedScheme {
  const length = DIGEST_LENGTH[algorithm];
  return {
    kind: 'encoded',
    defaultEncoding: 'base64',
    verifyRaw(password, raw) {
      if (raw.length <= length) return malformed(`salted ${algorithm} value too short (${raw.length} bytes)`);
      const salt = raw.subarray(length);
      const digest = createHash(algorithm).update(password).update(salt).digest();
      return equalBytes(digest, raw.subarray(0, length)) ? MATCH : mismatch();
    },
    generateRaw(password) {
      const salt = randomBytes(NEW_SALT_LENGTH);
      return Buffer.concat([createHash(algorithm).update(password).update(salt).digest(), salt]);
    },
  };
}

export const digestSchemes: Readonly<Record<string, EncodedScheme>> = {
  SHA: unsalted('sha1', 'base64'),
  SHA1: unsalted('sha1', 'base64'),
  SHA256: unsalted('sha256', 'base64'),
  SHA512: unsalted('sha512', 'base64'),
  'PLAIN-MD5': unsalted('md5', 'hex'),
  'LDAP-MD5': unsalted('md5', 'base64'),
  SMD5: salted('md5'),
  SSHA: salted('sha1'),
  SSHA256: salted('sha256'),
  SSHA512: salted('sha512'),
};
