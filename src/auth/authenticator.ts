/**
 * The authentication port the front-ends use (POP3 USER/PASS, APOP, SASL;
 * SMTP AUTH and RCPT lookups). The passwd-file user database implements it;
 * a library user can plug in their own (LDAP, SQL) without touching protocol
 * code, as the Indy and Clever components let users plug in through events.
 */
import type { MailUser } from '../storage/store.js';

export interface Authenticator {
  /**
   * Resolve a login or an address (`alice`, `Alice` with case-insensitive
   * names on, `alice@example.org` for a local domain) to the canonical user.
   * undefined when there is no such user. Never throws on odd input.
   */
  lookup(loginOrAddress: string): MailUser | undefined;
  /**
   * Check a plaintext password (USER/PASS, AUTH PLAIN/LOGIN). Resolves to the
   * user on success, undefined on any failure. An unknown user costs the same
   * work as a wrong password (a dummy hash check) and gets the same answer.
   */
  verifyPassword(login: string, password: string): Promise<MailUser | undefined>;
  /**
   * Check a shared-secret digest: APOP (md5(challenge + secret)) or CRAM-MD5
   * (hmac-md5(secret, challenge)), both as lowercase hex. Works only for users
   * whose stored password is PLAIN (a hash cannot be used as the secret).
   */
  verifyDigest(
    mechanism: 'APOP' | 'CRAM-MD5',
    login: string,
    challenge: string,
    digestHex: string,
  ): Promise<MailUser | undefined>;
  /** True when at least one user could use APOP/CRAM-MD5 (a PLAIN password): offer them only then. */
  hasSharedSecrets(): boolean;
}
