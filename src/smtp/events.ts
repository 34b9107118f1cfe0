/**
 * The typed events an SmtpServer emits, as Pop3Server does (src/pop3/events.ts),
 * for library users and for /metrics. Listeners run synchronously inside
 * the connection; one that throws is logged and ignored.
 */

/** A client connected (before the greeting; a refused connection is still counted, then closed). */
export interface SmtpConnectEvent {
  readonly sessionId: string;
  readonly remoteAddress: string;
}

/**
 * One command answered: `command` is the verb in upper case (LHLO for
 * LMTP), or `unknown` for a line that names no SMTP command; `code` is the
 * final reply code (DATA: the reply after the message, not the 354; AUTH:
 * 235 or 535, not the 334 challenges; LMTP DATA: the first recipient's).
 */
export interface SmtpCommandEvent {
  readonly sessionId: string;
  readonly command: string;
  readonly code: number;
}

export interface SmtpLoginEvent {
  readonly sessionId: string;
  /** Canonical user name. */
  readonly user: string;
  /** PLAIN, LOGIN, CRAM-MD5. */
  readonly mechanism: string;
}

export interface SmtpLoginFailedEvent {
  readonly sessionId: string;
  readonly login: string;
  readonly mechanism: string;
}

/** A message handled after its final `.`: how many recipients got it, and its size. */
export interface SmtpMessageEvent {
  readonly sessionId: string;
  readonly queueId: string;
  /** Recipients whose copy is durable (or whose handler accepted it). */
  readonly delivered: number;
  readonly refused: number;
  /** Octets of message content received (after dot-unstuffing). */
  readonly size: number;
  /** From the start of the message content to the decision (reception, checks, delivery), in milliseconds. */
  readonly durationMs: number;
}

/** A connection ended: the octets it carried each way (after TLS: the decrypted ones). */
export interface SmtpSessionEndEvent {
  readonly sessionId: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
}

export interface SmtpServerEvents {
  connect: [SmtpConnectEvent];
  command: [SmtpCommandEvent];
  login: [SmtpLoginEvent];
  'login-failed': [SmtpLoginFailedEvent];
  message: [SmtpMessageEvent];
  'session-end': [SmtpSessionEndEvent];
}

/** How the server's parts report events (the server forwards them to its listeners). */
export interface SmtpEventSink {
  emit<K extends keyof SmtpServerEvents>(event: K, ...args: SmtpServerEvents[K]): void;
}

/** SMTP and LMTP verbs that are metric labels; anything else is `unknown` (a client's noise is never a label). */
export const KNOWN_VERBS: ReadonlySet<string> = new Set([
  'HELO', 'EHLO', 'LHLO', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'EXPN', 'HELP',
  'STARTTLS', 'AUTH', 'TURN', 'ATRN', 'ETRN', 'SEND', 'SOML', 'SAML', 'XCLIENT', 'XFORWARD',
]);
