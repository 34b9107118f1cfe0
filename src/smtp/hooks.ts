/**
 * The library hooks of createSmtpServer, as the Indy TIdSMTPServer events
 * offer them: decisions on MAIL and RCPT, and what happens to a received
 * message: stored (the default), handed over raw as a stream (Indy's
 * rmRaw), or parsed by nodemailer's mailparser (rmMessageParsed).
 *
 * A hook may also throw an SmtpReplyError: that is a rejection with it.
 * Any other exception is a bug in the hook: it is logged and the client
 * gets 451 4.3.0.
 */
import type { Readable } from 'node:stream';
import type { ParsedMail } from 'mailparser';
import type { SmtpReplyError } from '../errors.js';
import type { MailUser } from '../storage/store.js';
import type { AcceptedRecipient } from './delivery.js';
import type { RecipientResolution } from './recipient-policy.js';

export type { AcceptedRecipient } from './delivery.js';

/** What a hook may know about the connection. */
export interface SessionInfo {
  /** smtp-server's connection id (the `cid` in logs). */
  readonly id: string;
  /** '' on a Unix socket. */
  readonly remoteAddress: string;
  /** Reverse-resolved name, or `[ip]`; '' on a Unix socket. */
  readonly clientHostname: string;
  /** The HELO/EHLO/LHLO argument. */
  readonly helo: string | undefined;
  readonly secure: boolean;
  readonly tls: { readonly version: string; readonly cipher: string } | undefined;
  /** Canonical name of the authenticated user. */
  readonly user: string | undefined;
  /** RFC 3848 protocol: ESMTP, ESMTPSA, LMTP, ... */
  readonly protocol: string;
}

/** undefined: maildird's own decision stands. */
export type HookDecision =
  | undefined
  | { readonly action: 'accept' }
  | { readonly action: 'reject'; readonly reply: SmtpReplyError };

/** RCPT may also name the users an accepted address reaches (the default store delivery needs at least one). */
export type RcptDecision =
  | undefined
  | { readonly action: 'accept'; readonly users?: readonly MailUser[] }
  | { readonly action: 'reject'; readonly reply: SmtpReplyError };

export interface MailFromContext {
  /** '' for the null sender. */
  readonly address: string;
  /** ESMTP parameters, upper-case keys (SIZE, BODY, SMTPUTF8...). */
  readonly parameters: Readonly<Record<string, string | true>>;
  readonly session: SessionInfo;
}

export interface RcptToContext {
  readonly address: string;
  readonly session: SessionInfo;
  /** What the recipient policy decided. */
  readonly policy: RecipientResolution;
}

export type MailFromHook = (context: MailFromContext) => HookDecision | Promise<HookDecision>;
export type RcptToHook = (context: RcptToContext) => RcptDecision | Promise<RcptDecision>;

export interface ReceivedMessage {
  /** Our id for this message (the `id` of the Received header and the log line). */
  readonly queueId: string;
  readonly mailFrom: string;
  /** In envelope order. */
  readonly recipients: readonly AcceptedRecipient[];
  readonly session: SessionInfo;
  /** The `Return-Path:` and `Received:` fields the default delivery would add for `recipient`. */
  traceHeaders(recipient: string): string;
}

/**
 * undefined: every recipient accepted (250). An array: one entry per
 * recipient (undefined = accepted); SMTP sends one reply (see
 * delivery.ts summarise), LMTP one per recipient.
 */
export type MessageResult = void | undefined | readonly (SmtpReplyError | undefined)[];

export type MessageHandler =
  | { readonly mode: 'store' }
  | {
      readonly mode: 'raw';
      /**
       * The content as received (CRLF, dot-unstuffed, no headers added),
       * already checked chunk by chunk. Consume it: a violation found in
       * a part left unread still turns the reply into an error.
       */
      readonly handle: (message: ReceivedMessage, content: Readable) => Promise<MessageResult>;
    }
  | {
      readonly mode: 'parsed';
      readonly handle: (message: ReceivedMessage, parsed: ParsedMail) => Promise<MessageResult>;
    };
