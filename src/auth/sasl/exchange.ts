/**
 * Server-side SASL (RFC 4422) as POP3 AUTH (RFC 5034) and SMTP AUTH (RFC
 * 4954) frame it: the server sends base64 challenges, the client answers
 * one base64 line each. A mechanism is a small state machine that turns
 * those lines into credentials; checking them is the Authenticator's job
 * (verify.ts), so POP3 and SMTP share one implementation of each.
 *
 * Framing rules common to both protocols, applied here once:
 * - a client line `*` cancels the exchange (RFC 5034 section 4, RFC 4954
 *   section 4);
 * - an initial response of `=` is an empty initial response, distinct from
 *   no initial response at all (RFC 5034 section 4);
 * - everything else must be strict base64 (RFC 4648 section 4: canonical
 *   alphabet, padding, no whitespace), or the exchange fails with
 *   'bad-base64'.
 */

export type SaslMechanismName = 'PLAIN' | 'LOGIN' | 'CRAM-MD5';

export type SaslErrorCode =
  | 'bad-base64' // a line that is not strict base64
  | 'malformed' // decoded, but not what the mechanism expects
  | 'cancelled' // the client sent `*`
  | 'authzid-denied' // PLAIN asked to act as another user
  | 'finished'; // a line after the exchange ended

/** What a finished exchange hands to verifySaslCredentials(). */
export type SaslCredentials =
  | {
      readonly kind: 'password';
      readonly mechanism: 'PLAIN' | 'LOGIN';
      readonly login: string;
      readonly password: string;
    }
  | {
      readonly kind: 'digest';
      readonly mechanism: 'CRAM-MD5';
      readonly login: string;
      /** The challenge as sent, decoded (`<random.time@host>`). */
      readonly challenge: string;
      /** 32 lowercase hex digits. */
      readonly digestHex: string;
    };

export type SaslStep =
  /** Send `+ <challenge>` (POP3) or `334 <challenge>` (SMTP) and pass the reply line to next(). */
  | { readonly kind: 'challenge'; readonly challenge: string }
  /** The client has said everything; verify `credentials`. */
  | { readonly kind: 'done'; readonly done: true; readonly login: string; readonly credentials: SaslCredentials }
  /** End the exchange with a failure reply; `detail` is for the debug log, never the client. */
  | { readonly kind: 'error'; readonly error: SaslErrorCode; readonly detail: string };

export interface SaslExchange {
  readonly mechanism: SaslMechanismName;
  /** Begin; `initialResponse` is the AUTH command's argument after the mechanism, if any (`=` for empty). */
  start(initialResponse?: string): SaslStep;
  /** The client's answer to the last challenge: base64, or `*` to cancel. */
  next(clientLineBase64: string): SaslStep;
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decode strict base64: canonical alphabet, required padding, no
 * whitespace, and zero unused bits (so one byte string has one spelling).
 */
export function decodeStrictBase64(text: string): Buffer | undefined {
  if (!STRICT_BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

export function encodeBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text, or undefined when the bytes are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export function saslError(error: SaslErrorCode, detail: string): SaslStep {
  return { kind: 'error', error, detail };
}

export function challengeStep(text: string): SaslStep {
  return { kind: 'challenge', challenge: encodeBase64(text) };
}

export function doneStep(credentials: SaslCredentials): SaslStep {
  return { kind: 'done', done: true, login: credentials.login, credentials };
}

export type ClientPayload =
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'error'; readonly step: SaslStep };

/** Apply the framing rules to a client line (`initial` for an AUTH argument, where `=` means empty). */
export function readClientPayload(line: string, initial: boolean): ClientPayload {
  if (line === '*') return { kind: 'error', step: saslError('cancelled', 'client cancelled the exchange') };
  if (initial && line === '=') return { kind: 'bytes', bytes: Buffer.alloc(0) };
  const bytes = decodeStrictBase64(line);
  if (bytes === undefined) return { kind: 'error', step: saslError('bad-base64', 'response is not strict base64') };
  return { kind: 'bytes', bytes };
}
