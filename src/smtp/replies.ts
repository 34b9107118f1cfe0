/**
 * SMTP replies: the one place where errors become what a client sees
 * (STYLE.md 7). Every reply maildird composes carries an RFC 3463 enhanced
 * status code; smtp-server picks one from the reply code alone (554 is
 * always 5.6.0 there), so a reply's text handed to smtp-server starts with
 * our code and the connection (connection.ts) moves it into place.
 */
import { SmtpReplyError, StorageError } from '../errors.js';

/** A reply in parts: `code enhanced text`. */
export interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

export interface ReplyMappingOptions {
  /**
   * Over-quota as a temporary failure (452 4.2.2) instead of the default
   * permanent one (552 5.2.2): for sites that expect users to clean up and
   * prefer the sender to retry (Postfix's `soft_bounce`-like choice).
   */
  readonly quotaIsTemporary?: boolean;
}

/** The canned replies, named, so texts live in one table. RFC sections in comments. */
export const REPLIES = {
  // RFC 5321 4.2.3 / RFC 3463 X.7.1: delivery not authorized
  relayDenied: { code: 554, enhanced: '5.7.1', text: 'Relay access denied' },
  // RFC 3463 X.1.1: bad destination mailbox address
  unknownUser: { code: 550, enhanced: '5.1.1', text: 'User unknown' },
  // RFC 4954 section 6 / RFC 3207 section 4
  authRequired: { code: 530, enhanced: '5.7.0', text: 'Authentication required' },
  startTlsFirst: { code: 530, enhanced: '5.7.0', text: 'Must issue a STARTTLS command first' },
  // RFC 4954 section 6: 538 5.7.11
  encryptionRequired: { code: 538, enhanced: '5.7.11', text: 'Encryption required for requested authentication mechanism' },
  authFailed: { code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' },
  // RFC 3463 X.2.2 mailbox full
  quota: { code: 552, enhanced: '5.2.2', text: 'Mailbox full' },
  quotaTemporary: { code: 452, enhanced: '4.2.2', text: 'Mailbox full, try again later' },
  // RFC 3463 X.3.1 mail system full
  noSpace: { code: 452, enhanced: '4.3.1', text: 'Insufficient system storage' },
  // RFC 1870 section 6 / RFC 3463 X.3.4
  tooLarge: { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' },
  // RFC 3463 X.3.0 other mail system status
  temporary: { code: 451, enhanced: '4.3.0', text: 'Local error in processing, try again later' },
  permanent: { code: 554, enhanced: '5.3.0', text: 'Mail system error' },
  // RFC 5321 6.3 / RFC 3463 X.4.6 routing loop detected
  mailLoop: { code: 554, enhanced: '5.4.6', text: 'Too many hops (Received headers): mail loop' },
  // RFC 5321 2.3.8 / RFC 3463 X.6.0: see data-inspector.ts
  bareCr: { code: 550, enhanced: '5.6.0', text: 'Bare <CR> received; lines must end with <CR><LF>' },
  fakeEndOfData: {
    code: 550,
    enhanced: '5.6.0',
    text: 'A line holding only "." next to a bare <LF> (SMTP smuggling attempt)',
  },
  // RFC 5321 4.5.3.2.7 and 3.8: the server may close after a timeout with 421
  idleTimeout: { code: 421, enhanced: '4.4.2', text: 'Timeout waiting for a command, closing connection' },
  lineTimeout: { code: 421, enhanced: '4.4.2', text: 'Command line not completed in time, closing connection' },
  dataTooSlow: { code: 421, enhanced: '4.4.2', text: 'Message data arriving too slowly, closing connection' },
  tooManyErrors: { code: 421, enhanced: '4.7.0', text: 'Too many errors, closing connection' },
  tooManyMessages: { code: 421, enhanced: '4.7.0', text: 'Too many messages in one connection, please reconnect' },
  tooManyFromAddress: { code: 421, enhanced: '4.7.0', text: 'Too many connections from your address, try again later' },
} as const satisfies Record<string, SmtpReply>;

export function replyOf(reply: SmtpReply): SmtpReplyError {
  return new SmtpReplyError(reply.code, reply.enhanced, reply.text);
}

/** The same reply with a more specific text (e.g. naming the address). */
export function withText(reply: SmtpReply, text: string): SmtpReplyError {
  return new SmtpReplyError(reply.code, reply.enhanced, text);
}

/**
 * THE mapper from errors to SMTP replies. SmtpReplyError passes through;
 * StorageError kinds map to the codes DESIGN.md and errors.ts name;
 * anything else is a surprise: a generic temporary failure (the caller logs
 * the error in full; the client never sees internals).
 */
export function toSmtpReply(err: unknown, options: ReplyMappingOptions = {}): SmtpReplyError {
  if (err instanceof SmtpReplyError) return err;
  if (err instanceof StorageError) {
    switch (err.kind) {
      case 'quota':
        return replyOf(options.quotaIsTemporary === true ? REPLIES.quotaTemporary : REPLIES.quota);
      case 'no-space':
        return replyOf(REPLIES.noSpace);
      case 'too-large':
        return replyOf(REPLIES.tooLarge);
      case 'not-found':
        // The user's folder went away between RCPT and DATA.
        return replyOf(REPLIES.unknownUser);
      case 'invalid-name':
        // A user whose folder would fall outside the root: retrying cannot help.
        return replyOf(REPLIES.permanent);
      case 'permanent':
        // Permission denied, a read-only or broken tree: an operator must act,
        // and once they have, the mail should still arrive. Defer, as Postfix's
        // local delivery does, rather than bounce mail for a local mistake.
      case 'temporary':
      case 'in-use':
        return replyOf(REPLIES.temporary);
      default:
        return assertNever(err.kind);
    }
  }
  return replyOf(REPLIES.temporary);
}

/** True when the reply asks the client to retry (4xx). */
export function isTemporary(reply: SmtpReplyError): boolean {
  return reply.replyCode >= 400 && reply.replyCode < 500;
}

/**
 * What smtp-server reads from a handler's error: `responseCode` and a
 * message. The enhanced code leads the message; MaildirdConnection.send()
 * puts it where RFC 2034 wants it (and drops it where none belongs).
 */
export interface ServerReplyError extends Error {
  responseCode: number;
}

export function toServerError(reply: SmtpReplyError): ServerReplyError {
  const err = new Error(`${reply.enhancedCode} ${reply.message}`, { cause: reply }) as ServerReplyError;
  err.responseCode = reply.replyCode;
  return err;
}

/** Matches a leading RFC 3463 enhanced code: class.subject.detail. */
export const ENHANCED_PREFIX = /^([245])\.(\d{1,3})\.(\d{1,3}) /;

/** Split `X.Y.Z text` into code and text when X matches the reply class. */
export function splitEnhanced(code: number, text: string): { enhanced: string; text: string } | undefined {
  const m = ENHANCED_PREFIX.exec(text);
  if (m === null || m[1] !== String(Math.floor(code / 100))) return undefined;
  return { enhanced: `${m[1]}.${m[2]}.${m[3]}`, text: text.slice(m[0].length) };
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${String(value)}`);
}
