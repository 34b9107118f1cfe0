/**
 * Which SASL mechanisms to offer, making an exchange for one, and checking
 * what it produced through the Authenticator, for POP3 AUTH and for SMTP
 * AUTH (where nodemailer's smtp-server does the framing and hands us the
 * same credentials).
 */
import type { MailUser } from '../../storage/store.js';
import type { Authenticator } from '../authenticator.js';
import { CramMd5Exchange, type ChallengeOptions } from './cram-md5.js';
import type { SaslCredentials, SaslExchange, SaslMechanismName } from './exchange.js';
import { LoginExchange } from './login.js';
import { PlainExchange } from './plain.js';

export interface OfferOptions {
  /** TLS is on, or the peer is on loopback: plaintext passwords are safe to send. */
  readonly secure: boolean;
  /** Allow plaintext mechanisms on insecure connections anyway (Dovecot's disable_plaintext_auth = no). */
  readonly allowPlaintext: boolean;
  /** Authenticator.hasSharedSecrets(): some user has a PLAIN password, so CRAM-MD5 can succeed. */
  readonly hasSharedSecrets: boolean;
  /**
   * The operator turned CRAM-MD5 on (the `cramMd5` key). Off by default:
   * offered, it is what curl (and other clients that take the "strongest"
   * mechanism) pick, and it fails for every user whose password is hashed.
   */
  readonly cramMd5: boolean;
}

/** Every mechanism maildird implements, in the order it offers them. */
export const SASL_MECHANISMS: readonly SaslMechanismName[] = ['PLAIN', 'LOGIN', 'CRAM-MD5'];

/**
 * The mechanisms to list in CAPA `SASL` / EHLO `AUTH`. PLAIN and LOGIN send
 * the password itself, so only over TLS or loopback unless allowPlaintext;
 * CRAM-MD5 never reveals it and is offered, when turned on, whenever
 * someone could use it.
 */
export function saslMechanisms(options: OfferOptions): SaslMechanismName[] {
  const plaintext = options.secure || options.allowPlaintext;
  return SASL_MECHANISMS.filter((name) => (name === 'CRAM-MD5' ? options.cramMd5 && options.hasSharedSecrets : plaintext));
}

/** The mechanism a client named (case-insensitive, RFC 4422 section 3.1 names are upper case); undefined if unknown. */
export function parseMechanismName(text: string): SaslMechanismName | undefined {
  const upper = text.toUpperCase();
  return SASL_MECHANISMS.find((name) => name === upper);
}

/** A fresh exchange for one AUTH command. */
export function createSaslExchange(mechanism: SaslMechanismName, options: ChallengeOptions): SaslExchange {
  switch (mechanism) {
    case 'PLAIN':
      return new PlainExchange();
    case 'LOGIN':
      return new LoginExchange();
    case 'CRAM-MD5':
      return new CramMd5Exchange(options);
  }
}

/** Check finished credentials: the user on success, undefined on any failure (same cost and answer for unknown users). */
export function verifySaslCredentials(users: Authenticator, credentials: SaslCredentials): Promise<MailUser | undefined> {
  switch (credentials.kind) {
    case 'password':
      return users.verifyPassword(credentials.login, credentials.password);
    case 'digest':
      return users.verifyDigest('CRAM-MD5', credentials.login, credentials.challenge, credentials.digestHex);
  }
}
