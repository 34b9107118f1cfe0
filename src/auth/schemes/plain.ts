/**
 * The plaintext family: `{PLAIN}`, with Dovecot's aliases `{CLEAR}` and
 * `{CLEARTEXT}`, and the `.B64`/`.HEX` suffixes for secrets a passwd-file
 * line cannot hold as they are (a `:` or a line end): `{PLAIN.B64}c2VjOnJldA==`.
 * These are the only stored passwords usable as the shared secret of APOP
 * (RFC 1939 section 7) and CRAM-MD5 (RFC 2195).
 */
import { equalSecrets } from './compare.js';
import { MATCH, mismatch, type EncodedScheme } from './scheme.js';

export const plainScheme: EncodedScheme = {
  kind: 'encoded',
  defaultEncoding: 'text',
  verifyRaw(password, secret) {
    return equalSecrets(password, secret) ? MATCH : mismatch();
  },
  generateRaw(password) {
    return Buffer.from(password);
  },
};

/** Dovecot's names for the plaintext scheme. */
export const plainSchemes: Readonly<Record<string, EncodedScheme>> = {
  PLAIN: plainScheme,
  CLEAR: plainScheme,
  CLEARTEXT: plainScheme,
};
