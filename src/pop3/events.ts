/**
 * The typed events a Pop3Server emits, for library users who want to
 * observe sessions (as the Indy and Clever components expose OnLogin,
 * OnRetrieve, OnDelete...). Listeners run synchronously inside the
 * session; one that throws is logged and ignored.
 */

/** A client connected and got its greeting. */
export interface ConnectEvent {
  readonly sessionId: string;
  readonly remoteAddress: string;
  readonly isTls: boolean;
}

/**
 * One command line handled: `command` is the verb in upper case, or
 * `unknown` for a line that names no POP3 command (a client's noise never
 * becomes a metric label); `ok` says whether the final reply was `+OK`.
 * A command whose connection was lost before its reply counts as failed.
 */
export interface CommandEvent {
  readonly sessionId: string;
  readonly command: string;
  readonly ok: boolean;
}

export interface LoginEvent {
  readonly sessionId: string;
  /** Canonical user name. */
  readonly user: string;
  /** `USER`, `APOP`, `SASL PLAIN`, `SASL LOGIN`, `SASL CRAM-MD5`. */
  readonly mechanism: string;
  readonly remoteAddress: string;
  readonly isTls: boolean;
  /** Messages and octets in the maildrop snapshot. */
  readonly messages: number;
  readonly octets: number;
}

export interface LoginFailedEvent {
  readonly sessionId: string;
  /** The login as the client gave it. */
  readonly login: string;
  readonly mechanism: string;
  readonly remoteAddress: string;
}

export interface RetrieveEvent {
  readonly sessionId: string;
  readonly user: string;
  /** Message number in the session (1-based). */
  readonly number: number;
  readonly uidl: string;
  /** Octets sent, dot-stuffing excluded. */
  readonly octets: number;
}

/** Emitted once per QUIT whose UPDATE removed messages, after the removal is durable. */
export interface DeleteEvent {
  readonly sessionId: string;
  readonly user: string;
  readonly messages: readonly { readonly number: number; readonly uidl: string }[];
}

export type SessionEndReason =
  | 'quit'
  | 'eof'
  | 'idle-timeout'
  | 'line-timeout'
  | 'shutdown'
  | 'bad-commands'
  | 'auth-failures'
  | 'error';

export interface SessionSummary {
  readonly sessionId: string;
  /** Canonical user, when the session logged in. */
  readonly user: string | undefined;
  readonly remoteAddress: string;
  readonly isTls: boolean;
  /** Messages sent whole by RETR. */
  readonly retrieved: number;
  /** Messages removed by the session's UPDATE. */
  readonly deleted: number;
  /** Octets written to the client. */
  readonly bytesSent: number;
  /** Octets received from the client. */
  readonly bytesReceived: number;
  readonly durationMs: number;
  readonly reason: SessionEndReason;
}

export interface Pop3ServerEvents {
  connect: [ConnectEvent];
  command: [CommandEvent];
  login: [LoginEvent];
  'login-failed': [LoginFailedEvent];
  retrieve: [RetrieveEvent];
  delete: [DeleteEvent];
  'session-end': [SessionSummary];
}

/** How a session reports events (the server forwards them to its listeners). */
export interface Pop3EventSink {
  emit<K extends keyof Pop3ServerEvents>(event: K, ...args: Pop3ServerEvents[K]): void;
}
