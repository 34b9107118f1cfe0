/**
 * THE STORAGE PORT. The front-ends (POP3, SMTP/LMTP, `deliver`) see mail
 * only through these types; the Maildir adapter (storage/maildir) and the
 * in-memory store (storage/memory-store.ts) implement them and pass the same
 * contract suite (test/storage/contract.ts). Types and contracts only: no
 * code lives here.
 *
 * Errors: every method rejects only with StorageError (src/errors.ts), whose
 * `kind` each front-end maps to a reply in one place.
 */
import type { Readable } from 'node:stream';
import type { StorageError } from '../errors.js';

/**
 * What the store needs to know about a user. Made by the user database
 * (src/auth) from a users-file line; the store never parses user input into
 * a MailUser itself.
 */
export interface MailUser {
  /** Canonical name as written in the users file: `alice` or `alice@example.org`. */
  readonly name: string;
  /** The passwd line's home field (`%h` in a layout template), if any. */
  readonly home?: string | undefined;
  /** Owner for new files and folders when maildird runs as root. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /**
   * Storage quota in bytes (Dovecot `userdb_quota_rule=*:storage=N`).
   * undefined: the store's configured default; 0: unlimited.
   */
  readonly quotaBytes?: number | undefined;
  /** Message-count quota (`*:messages=N`); undefined or 0: unlimited. */
  readonly quotaMessages?: number | undefined;
}

/** One message of a maildrop snapshot, as POP3 LIST/UIDL report it. */
export interface MessageInfo {
  /** RFC 1939 unique-id: 1-70 octets of 0x21-0x7E, stable while the file exists, never reused. */
  readonly uidl: string;
  /**
   * Octets RETR sends before the terminating `.`, dot-stuffing excluded
   * (DESIGN.md "Wire size"): every bare LF counted as CRLF, plus CRLF when
   * the last line has no line end.
   */
  readonly size: number;
}

export interface OpenMessageOptions {
  /**
   * For TOP: send the header, the blank line, and at most this many body
   * lines. undefined: the whole message.
   */
  readonly bodyLines?: number;
}

/**
 * A whole message in memory, framed as the body of a multi-line reply
 * (RFC 1939 section 3): what Maildrop.readMessage gives.
 */
export interface FramedMessage {
  /**
   * The wire form (as openMessage gives it), dot-stuffed (a line starting
   * with "." gets one more), followed by the terminating `.CRLF`. The caller
   * owns it: the store keeps no reference and never writes into it again.
   */
  readonly bytes: Buffer;
  /** Wire octets, dot-stuffing and terminator excluded: what `MessageInfo.size` promises. */
  readonly wireSize: number;
}

/** What a POP3 session changes when QUIT enters UPDATE. Indexes are 0-based into `messages`. */
export interface MaildropUpdate {
  /** Messages marked by DELE: moved to Trash or unlinked, per the store's deletion mode. */
  readonly deleted: ReadonlySet<number>;
  /** Messages sent whole by RETR: marked Seen (`new/` -> `cur/` with `:2,S`) unless deleted. */
  readonly retrieved: ReadonlySet<number>;
}

export interface CommitResult {
  /** Messages removed from the maildrop (moved to Trash or unlinked). */
  readonly deleted: number;
  /** Messages newly marked Seen. */
  readonly seen: number;
}

/**
 * An exclusive, locked snapshot of one user's maildrop: a POP3 session from
 * login to the end of UPDATE. While it is open no other Maildrop for the
 * same user can be opened (in this process, other processes or other hosts
 * sharing the tree). Deliveries never wait for it: they land and show up in
 * the next snapshot.
 */
export interface Maildrop {
  /** Canonical user name. */
  readonly user: string;
  /** The snapshot taken at open, oldest first; index 0 is POP3 message 1. Never changes. */
  readonly messages: readonly MessageInfo[];
  /**
   * Open message `index` in wire form (CRLF line ends, final CRLF added,
   * NOT dot-stuffed: that is the protocol's job). The file is opened before
   * the promise resolves, so a caller can send `+OK` only once this succeeds.
   * The stream must be consumed or destroyed. Rejects with
   * StorageError('not-found') if the message vanished (another program
   * removed it), 'temporary' on I/O errors.
   */
  openMessage(index: number, options?: OpenMessageOptions): Promise<Readable>;
  /**
   * Message `index` whole, in memory, ready to follow a `+OK` line: for
   * small messages (the caller decides from `messages[index].size`; nothing
   * bounds the memory this takes). A store may read a small file
   * synchronously, blocking its thread briefly: one small read costs less
   * than a round trip through a thread pool. Rejects like openMessage
   * (StorageError 'not-found' if the message vanished, 'temporary' on I/O
   * errors), so a `+OK` sent after it resolves is never followed by an error.
   */
  readMessage(index: number): Promise<FramedMessage>;
  /**
   * Apply an UPDATE as one batch through the journal and release the lock.
   * Resolves only when the change is durable (files moved or unlinked,
   * directories fsynced). On failure rejects with StorageError('temporary'
   * or 'permanent') with nothing half-done (moves already made are undone),
   * and the lock is still released. Call at most once.
   */
  commit(update: MaildropUpdate): Promise<CommitResult>;
  /**
   * Release the lock and change nothing (dropped connection, timeout,
   * shutdown). Idempotent; safe after commit().
   */
  release(): Promise<void>;
}

/** One message to deliver to one or more local users. */
export interface DeliveryRequest {
  readonly recipients: readonly MailUser[];
  /**
   * The message body as received, with CRLF or LF line ends; it is stored
   * with LF (a lone CR is kept). Consumed exactly once. An iterable of
   * chunks lets a front-end stream DATA without holding the message.
   */
  readonly content: Buffer | AsyncIterable<Buffer | Uint8Array>;
  /**
   * Header lines to put before the message for one recipient (Return-Path,
   * Received ... for <rcpt>), CRLF or LF, ending with a line end.
   */
  readonly prefix?: ((recipient: MailUser) => string | Buffer) | undefined;
  /** Largest accepted message in octets (content alone); over it: 'too-large', nothing written. */
  readonly maxBytes?: number | undefined;
}

export type DeliveryOutcome =
  | { readonly ok: true; readonly user: string; /** Store-specific id (the Maildir base name). */ readonly id: string }
  | { readonly ok: false; readonly user: string; readonly error: StorageError };

/** What a Trash purge removed. */
export interface TrashPurgeResult {
  /** Messages removed from the Trash. */
  readonly purged: number;
  /** Their stored octets. */
  readonly bytes: number;
}

export interface StoreStats {
  /** Messages durably delivered since start. */
  readonly delivered: number;
  /** fsync calls made (files and directories) since start: with `delivered`, fsyncs per message. */
  readonly fsyncs: number;
}

export interface MailStore {
  /**
   * Lock and snapshot `user`'s maildrop. A user with no folder yet gets an
   * empty maildrop (the folder is created). Leftover batch journals are
   * rolled forward first. Rejects with StorageError('in-use') while another
   * Maildrop for the user is open anywhere, 'invalid-name' if the user's
   * folder would fall outside the root, 'temporary'/'permanent' on I/O errors.
   */
  openMaildrop(user: MailUser): Promise<Maildrop>;
  /**
   * Deliver one message to every recipient; one outcome per recipient, in
   * order. An ok outcome means the copy is durable (file fsynced, renamed
   * into place, directory fsynced): only then may a front-end acknowledge
   * it. A failed copy leaves no file behind. Rejects (instead of returning
   * failed outcomes) only when the content itself cannot be read.
   */
  deliver(request: DeliveryRequest): Promise<DeliveryOutcome[]>;
  /**
   * Trash retention (DESIGN "Names and defaults": EXPIRE is NEVER; Trash
   * retention is a separate sweeper): remove from `user`'s Trash every
   * message moved there before `olderThan`, for good. The maildrop itself
   * is never touched; a user with no folder or no Trash purges nothing.
   * Resolves when the removal is durable (folders fsynced). Takes no
   * maildrop lock and never waits for one: a message that a running UPDATE
   * moves into Trash was moved now, so it is never old enough. Rejects with
   * StorageError ('invalid-name' when the folder or its Trash would fall
   * outside the root, 'temporary'/'permanent' on I/O errors); what was
   * removed before a failure stays removed.
   */
  purgeTrash(user: MailUser, olderThan: Date): Promise<TrashPurgeResult>;
  /** Counters for metrics and benchmarks. */
  stats(): StoreStats;
  /** Stop timers and release what the store holds. Open maildrops must be released first. */
  close(): Promise<void>;
}
