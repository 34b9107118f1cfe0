/**
 * The shape of a POP3 command module (STYLE.md 1): `{ verb, states, run }`
 * plus what CAPA and the trace need. Every verb lives in commands/<verb>.ts;
 * commands/index.ts holds the one table. The session looks a verb up,
 * checks the state, parses nothing itself, and maps errors once.
 */
import type { Pop3ResponseCode } from '../errors.js';
import type { MailUser, OpenMessageOptions } from '../storage/store.js';
import type { Logger } from '../log/logger.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Pop3State, StateName, StateOf } from './state.js';
import type { Pop3SessionConfig } from './config.js';

/** What a command may know about the session besides its state. */
export interface SessionFacts {
  readonly isTls: boolean;
  readonly isLoopback: boolean;
  readonly remoteAddress: string;
  /** RFC 6856 UTF8 mode is on. */
  readonly isUtf8: boolean;
  /** TLS is configured and the connection is not encrypted yet: STLS is on offer. */
  readonly canStartTls: boolean;
  /** Plaintext passwords are acceptable here (TLS, loopback, or allowed by config). */
  readonly isPlaintextAllowed: boolean;
  /** The `<pid.rand.time@host>` of the greeting when APOP is on offer (RFC 1939 section 7). */
  readonly apopChallenge: string | undefined;
}

/** What a command's CAPA line may depend on. */
export interface CapabilityView {
  readonly state: StateName;
  readonly facts: SessionFacts;
  readonly config: Pop3SessionConfig;
  readonly users: Authenticator;
}

export interface CommandContext<S extends Pop3State = Pop3State> {
  readonly state: S;
  readonly facts: SessionFacts;
  readonly config: Pop3SessionConfig;
  readonly users: Authenticator;
  readonly log: Logger;
  /** Queue `+OK text`. */
  ok(text?: string): void;
  /** Queue `-ERR [code] text` for a request that was understood but cannot be met. */
  err(text: string, code?: Pop3ResponseCode): void;
  /** A multi-line reply (RFC 1939 section 3): `+OK first`, the lines dot-stuffed, then `.`. */
  multiline(first: string, lines: Iterable<string>): Promise<void>;
  /**
   * RETR/TOP: open message `index` (before anything is sent, STYLE.md 5),
   * then send `+OK` and the message dot-stuffed with backpressure.
   * Returns the octets of message data sent (stuffing excluded).
   */
  sendMessage(index: number, options?: OpenMessageOptions): Promise<number>;
  /** Drop messages read ahead, once no read is in flight: QUIT calls it before UPDATE moves files. */
  stopReadAhead(): Promise<void>;
  /** RETR sent message `index` whole: marked for Seen at UPDATE, counted, announced (event `retrieve`). */
  markRetrieved(index: number, octets: number): void;
  /** UPDATE committed these deletions (0-based): counted, announced (event `delete`). */
  noteCommitted(deleted: readonly number[]): void;
  /** Change state (logged). */
  transition(next: Pop3State): void;
  /**
   * Finish a successful authentication: LOGIN-DELAY check, lock the
   * maildrop, enter TRANSACTION and answer `+OK`. Throws Pop3Error /
   * StorageError (mapped by the session) when the maildrop cannot be had.
   */
  login(user: MailUser, mechanism: string): Promise<void>;
  /**
   * Check credentials for `login` (as the client gave it; '' if unknown):
   * serve the failed-login delay owed by this address and user first
   * (src/auth/throttle.ts), run `verify`, then login() on success or
   * authFailed() on failure.
   */
  authenticate(login: string, mechanism: string, verify: () => Promise<MailUser | undefined>): Promise<void>;
  /** A failed authentication: counted for the throttle, answered `-ERR [AUTH]` (closing after too many). */
  authFailed(login: string, mechanism: string): Promise<void>;
  /**
   * Read one SASL client response line (RFC 5034 section 4); the trace
   * masks it. undefined when the connection ended or timed out.
   */
  readResponse(): Promise<string | undefined>;
  /** Send raw `+ <challenge>` for a SASL exchange. */
  challenge(base64: string): void;
  /** STLS (RFC 2595 section 4): reply `+OK`, drop pipelined input, handshake. */
  startTls(): Promise<void>;
  enableUtf8(): void;
  /** The CAPA lines for this session now (derived from the command table, capabilities.ts). */
  capabilities(): string[];
  /** End the session after this reply is sent. */
  closeAfterReply(): void;
}

export interface Pop3Command<S extends StateName = StateName> {
  /** The verb in upper case. */
  readonly verb: string;
  /** States the command is valid in (RFC 1939 section 9 and each extension's RFC). */
  readonly states: readonly S[];
  /**
   * The CAPA line (RFC 2449 section 5) this command contributes on this
   * session, or undefined when it is not on offer here.
   */
  readonly capability?: (view: CapabilityView) => string | undefined;
  /** What the trace logs in place of the arguments, for commands that carry secrets. */
  readonly redact?: (args: string) => string;
  /**
   * Run the command. `args` is the text after the verb and one space,
   * untouched (PASS keeps spaces; everything else uses the parsers in
   * args.ts). Throw Pop3Error/StorageError for failures: the session maps them.
   */
  run(ctx: CommandContext<StateOf<S>>, args: string): Promise<void> | void;
}

/** Identity helper that infers S from `states`, so `run` sees the narrowed state. */
export function defineCommand<S extends StateName>(command: Pop3Command<S>): Pop3Command<S> {
  return command;
}
