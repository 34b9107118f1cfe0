/**
 * SASL CRAM-MD5 (RFC 2195): the server sends a unique challenge in the
 * form `<random.timestamp@hostname>`; the client answers `user SP digest`,
 * digest being HMAC-MD5(secret, challenge) in lowercase hex. It needs the
 * plaintext secret on the server, so it works only for users whose stored
 * password is PLAIN (Authenticator.verifyDigest), and is offered only when
 * such users exist. The mechanism is server-first: an initial response is
 * a protocol error (RFC 4422 section 4).
 */
import { randomBytes } from 'node:crypto';
import { challengeStep, decodeUtf8, doneStep, readClientPayload, saslError, type SaslExchange, type SaslStep } from './exchange.js';

export interface ChallengeOptions {
  /** The server's name, as in the greeting. Anything not a plain host name becomes `localhost`. */
  readonly hostname: string;
  /** Clock in milliseconds (injected in tests). */
  readonly now?: () => number;
  /** Source of the unique part (injected in tests); default 64 random bits in decimal. */
  readonly random?: () => string;
}

/**
 * A unique `<random.seconds@host>` string, the shape both RFC 2195 (CRAM-MD5)
 * and RFC 1939 section 7 (the APOP timestamp in the POP3 greeting) use.
 */
export function newChallenge(options: ChallengeOptions): string {
  const host = /^[A-Za-z0-9.-]{1,253}$/.test(options.hostname) ? options.hostname : 'localhost';
  const seconds = Math.floor((options.now ?? Date.now)() / 1000);
  const unique = (options.random ?? (() => randomBytes(8).readBigUInt64BE().toString()))();
  return `<${unique}.${seconds}@${host}>`;
}

export class CramMd5Exchange implements SaslExchange {
  readonly mechanism = 'CRAM-MD5' as const;
  readonly #options: ChallengeOptions;
  #state: 'new' | 'waiting' | 'ended' = 'new';
  #challenge = '';

  constructor(options: ChallengeOptions) {
    this.#options = options;
  }

  start(initialResponse?: string): SaslStep {
    if (this.#state !== 'new') return this.#end(saslError('finished', 'exchange already started'));
    if (initialResponse === '*') return this.#end(saslError('cancelled', 'client cancelled the exchange'));
    if (initialResponse !== undefined) return this.#end(saslError('malformed', 'CRAM-MD5 takes no initial response'));
    this.#challenge = newChallenge(this.#options);
    this.#state = 'waiting';
    return challengeStep(this.#challenge);
  }

  next(clientLineBase64: string): SaslStep {
    if (this.#state !== 'waiting') return this.#end(saslError('finished', 'no challenge outstanding'));
    const payload = readClientPayload(clientLineBase64, false);
    if (payload.kind === 'error') return this.#end(payload.step);
    const text = decodeUtf8(payload.bytes);
    if (text === undefined) return this.#end(saslError('malformed', 'response is not UTF-8'));
    // The user name may hold spaces; the digest is what follows the last one.
    const space = text.lastIndexOf(' ');
    const login = text.slice(0, Math.max(space, 0));
    const digest = text.slice(space + 1);
    if (space <= 0 || !/^[0-9a-fA-F]{32}$/.test(digest) || login.includes('\0')) {
      return this.#end(saslError('malformed', 'CRAM-MD5 response must be "user SP 32-hex-digest"'));
    }
    const challenge = this.#challenge;
    return this.#end(doneStep({ kind: 'digest', mechanism: 'CRAM-MD5', login, challenge, digestHex: digest.toLowerCase() }));
  }

  #end(step: SaslStep): SaslStep {
    this.#state = 'ended';
    return step;
  }
}
