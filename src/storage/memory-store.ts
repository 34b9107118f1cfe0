/**
 * An in-memory MailStore: the second real implementation of the storage port
 * (src/storage/store.ts), for library users who want a mail server without a
 * tree and for fast protocol tests. It passes the same contract suite as the
 * Maildir store (test/storage/contract.ts) and follows the same rules where
 * they make sense without files:
 *
 * - Stored bytes, wire sizes, TOP: src/storage/wire.ts, as the Maildir store.
 * - Identity: each message has a Maildir-style base name
 *   `<seconds>.M<usec>P<pid>Q<n>.<host>,S=<stored>,W=<wire>` and its UIDL is
 *   derived from it by DESIGN.md "Identity" (maildir/filename.ts, pure code);
 *   a base name is never reused for a user, even after an expunge.
 * - Order: by the name's leading `seconds[.M<usec>]`, then arrival.
 * - Exclusive access: one open Maildrop per user, in this store object (there
 *   are no other processes to exclude).
 * - Deletion: 'trash' keeps the message, base name and UIDL in a per-user
 *   Trash (inspect it with trash(user)); 'expunge' drops it. The Seen step
 *   sets a per-message flag. Trash does not count toward quota (Courier's
 *   default, as maildir/quota.ts).
 *
 * Honesty about durability: "durable" here means "in this object's maps
 * before the promise resolves". Nothing survives the process, and stats()
 * reports zero fsyncs.
 */
import { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import { UniqueNameGenerator, deliveredName, parseMaildirName, uidlFromBase } from './maildir/filename.js';
import type {
  CommitResult,
  DeliveryOutcome,
  DeliveryRequest,
  FramedMessage,
  MailStore,
  MailUser,
  Maildrop,
  MaildropUpdate,
  MessageInfo,
  OpenMessageOptions,
  StoreStats,
  TrashPurgeResult,
} from './store.js';
import { StoredDecoder, toMultilineBuffer, toStoredBuffer, toWireBuffer, topOfMessageBuffer, wireSize } from './wire.js';

export type DeletionMode = 'trash' | 'expunge';

export interface MemoryStoreOptions {
  /** What commit() does with deleted messages; default 'trash' (DESIGN.md defaults). */
  readonly deletionMode?: DeletionMode | undefined;
  /** Quota for users whose MailUser.quotaBytes is undefined; 0 or undefined: unlimited. */
  readonly defaultQuotaBytes?: number | undefined;
  /** Quota for users whose MailUser.quotaMessages is undefined; 0 or undefined: unlimited. */
  readonly defaultQuotaMessages?: number | undefined;
  /** Host part of generated names; default os.hostname(). */
  readonly hostname?: string | undefined;
  /** Clock in milliseconds since the epoch (fractions give microseconds); default performance time. */
  readonly now?: (() => number) | undefined;
}

/** A message as the store holds it: what messages(), trash() and seed() return. */
export interface MemoryMessage {
  /** Maildir-style base name: the delivery outcome's id. */
  readonly id: string;
  /** POP3 unique-id, derived from `id` by DESIGN.md "Identity". */
  readonly uidl: string;
  /** Stored bytes (a copy: changing it changes nothing in the store). */
  readonly content: Buffer;
  /** Wire size (what LIST reports). */
  readonly size: number;
  /** Set by the Seen step (a commit with the message retrieved and not deleted). */
  readonly isSeen: boolean;
}

export interface SeedOptions {
  /** Base name; default a fresh unique name. Must not have been used for this user before. */
  readonly id?: string | undefined;
  readonly isSeen?: boolean | undefined;
}

/** What the store keeps per message. Content is never mutated after creation. */
interface Entry {
  readonly id: string;
  readonly uidl: string;
  readonly content: Buffer;
  readonly size: number;
  /** Order keys (DESIGN.md "Order"): name time, then arrival sequence. */
  readonly seconds: number;
  readonly usec: number;
  readonly seq: number;
  isSeen: boolean;
  /** When a commit moved it to Trash (the store's clock, ms): what purgeTrash compares. */
  trashedAt?: number;
  /** Deleted by a commit or removed from outside: a snapshot that still lists it gets 'not-found'. */
  isGone: boolean;
}

interface Mailbox {
  /** The maildrop, oldest first. */
  readonly inbox: Entry[];
  readonly trash: Entry[];
  /** Every base name ever used for this user: never reused (RFC 1939 section 7). */
  readonly usedIds: Set<string>;
  /** Stored bytes of `inbox`, for the quota. */
  inboxBytes: number;
  holder: MemoryMaildrop | undefined;
}

/** The stream chunk size for openMessage: a socket-friendly write size. */
const CHUNK = 64 * 1024;

export class MemoryStore implements MailStore {
  readonly #mailboxes = new Map<string, Mailbox>();
  readonly #deletionMode: DeletionMode;
  readonly #defaultQuotaBytes: number;
  readonly #defaultQuotaMessages: number;
  readonly #names: UniqueNameGenerator;
  readonly #now: () => number;
  #seq = 0;
  #delivered = 0;
  #isClosed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#deletionMode = options.deletionMode ?? 'trash';
    this.#defaultQuotaBytes = options.defaultQuotaBytes ?? 0;
    this.#defaultQuotaMessages = options.defaultQuotaMessages ?? 0;
    this.#names = new UniqueNameGenerator(options.hostname === undefined ? {} : { hostname: options.hostname });
    this.#now = options.now ?? (() => performance.timeOrigin + performance.now());
  }

  get deletionMode(): DeletionMode {
    return this.#deletionMode;
  }

  async openMaildrop(user: MailUser): Promise<Maildrop> {
    this.#assertOpen();
    const name = checkedName(user.name);
    const box = this.#mailbox(name);
    if (box.holder !== undefined) {
      throw new StorageError('in-use', `maildrop of ${name} is already open`);
    }
    const drop = new MemoryMaildrop(name, [...box.inbox], box, (update) => this.#apply(box, update));
    box.holder = drop;
    return drop;
  }

  async deliver(request: DeliveryRequest): Promise<DeliveryOutcome[]> {
    const body = await readContent(request);
    const outcomes: DeliveryOutcome[] = [];
    for (const recipient of request.recipients) {
      const fail = (error: StorageError): void => {
        outcomes.push({ ok: false, user: recipient.name, error });
      };
      if (body === undefined) {
        fail(new StorageError('too-large', `message exceeds ${request.maxBytes ?? 0} octets`));
        continue;
      }
      if (this.#isClosed) {
        fail(new StorageError('temporary', 'store is closed'));
        continue;
      }
      let name: string;
      let content: Buffer;
      try {
        name = checkedName(recipient.name);
        content = withPrefix(body, request.prefix, recipient);
      } catch (err) {
        fail(err instanceof StorageError ? err : new StorageError('permanent', 'prefix failed', { cause: err }));
        continue;
      }
      const box = this.#mailbox(name);
      const quotaError = this.#quotaError(recipient, box, content.length);
      if (quotaError !== undefined) {
        fail(quotaError);
        continue;
      }
      const entry = this.#insert(box, content, undefined, false);
      this.#delivered++;
      outcomes.push({ ok: true, user: recipient.name, id: entry.id });
    }
    return outcomes;
  }

  async purgeTrash(user: MailUser, olderThan: Date): Promise<TrashPurgeResult> {
    this.#assertOpen();
    const box = this.#mailboxes.get(checkedName(user.name));
    if (box === undefined) return { purged: 0, bytes: 0 };
    const limit = olderThan.getTime();
    const old = box.trash.filter((e) => e.trashedAt !== undefined && e.trashedAt < limit);
    if (old.length === 0) return { purged: 0, bytes: 0 };
    const kept = box.trash.filter((e) => !old.includes(e));
    box.trash.splice(0, box.trash.length, ...kept);
    return { purged: old.length, bytes: old.reduce((sum, e) => sum + e.content.length, 0) };
  }

  stats(): StoreStats {
    // In memory there is nothing to fsync: the honest figure is zero.
    return { delivered: this.#delivered, fsyncs: 0 };
  }

  /**
   * Refuse new work. Maildrops still open keep working until released (the
   * port asks callers to release them first; being strict here would only
   * turn a shutdown race into an error).
   */
  async close(): Promise<void> {
    this.#isClosed = true;
  }

  /* ---- seeding and inspection, for tests and library users ---- */

  /**
   * Put `stored` into `user`'s maildrop as it is (stored form: no line-end
   * conversion, so a CRLF file from another MDA can be modelled), as the
   * newest message unless `id` carries an older time. No quota or lock
   * check: this is the operator copying a file into the tree. Throws
   * StorageError('invalid-name') for a bad user name or an id used before.
   */
  seed(user: MailUser | string, stored: Buffer | string, options: SeedOptions = {}): MemoryMessage {
    const box = this.#mailbox(checkedName(nameOf(user)));
    const content = Buffer.from(stored); // a private copy
    if (options.id !== undefined) {
      const parsed = parseMaildirName(options.id);
      if (parsed === undefined || parsed.info !== undefined || box.usedIds.has(options.id)) {
        throw new StorageError('invalid-name', `not a usable base name: ${JSON.stringify(options.id)}`);
      }
    }
    return view(this.#insert(box, content, options.id, options.isSeen ?? false));
  }

  /** The maildrop as it is now (not a session's snapshot), oldest first. */
  messages(user: MailUser | string): MemoryMessage[] {
    return (this.#mailboxes.get(nameOf(user))?.inbox ?? []).map(view);
  }

  /** The user's Trash, in the order messages were moved there. */
  trash(user: MailUser | string): MemoryMessage[] {
    return (this.#mailboxes.get(nameOf(user))?.trash ?? []).map(view);
  }

  /**
   * Remove a message as another program would (a Maildir reader deleting
   * the file): a session whose snapshot lists it gets 'not-found' on open.
   */
  removeMessage(user: MailUser | string, uidl: string): boolean {
    const box = this.#mailboxes.get(nameOf(user));
    const at = box?.inbox.findIndex((e) => e.uidl === uidl) ?? -1;
    if (box === undefined || at < 0) return false;
    const [entry] = box.inbox.splice(at, 1);
    if (entry !== undefined) {
      entry.isGone = true;
      box.inboxBytes -= entry.content.length;
    }
    return true;
  }

  /** Move a message back from Trash (an operator's restore): same base name, same UIDL, same place in the order. */
  restoreFromTrash(user: MailUser | string, uidl: string): boolean {
    const box = this.#mailboxes.get(nameOf(user));
    const at = box?.trash.findIndex((e) => e.uidl === uidl) ?? -1;
    if (box === undefined || at < 0) return false;
    const [old] = box.trash.splice(at, 1);
    if (old === undefined) return false;
    // A fresh record: a snapshot that saw the old one deleted keeps seeing it gone.
    const entry: Entry = { ...old, isGone: false };
    insertSorted(box.inbox, entry);
    box.inboxBytes += entry.content.length;
    return true;
  }

  /** True while a Maildrop of `user` is open. */
  isLocked(user: MailUser | string): boolean {
    return this.#mailboxes.get(nameOf(user))?.holder !== undefined;
  }

  /** Users that have a maildrop (opened, delivered to or seeded). */
  users(): string[] {
    return [...this.#mailboxes.keys()];
  }

  /* ---- internals ---- */

  #assertOpen(): void {
    if (this.#isClosed) throw new StorageError('temporary', 'store is closed');
  }

  #mailbox(name: string): Mailbox {
    let box = this.#mailboxes.get(name);
    if (box === undefined) {
      box = { inbox: [], trash: [], usedIds: new Set(), inboxBytes: 0, holder: undefined };
      this.#mailboxes.set(name, box);
    }
    return box;
  }

  /** Quota as maildir/quota.ts: the user's limits, else the defaults; over when used + new > limit. */
  #quotaError(user: MailUser, box: Mailbox, bytes: number): StorageError | undefined {
    const limitBytes = positive(user.quotaBytes ?? this.#defaultQuotaBytes);
    const limitMessages = positive(user.quotaMessages ?? this.#defaultQuotaMessages);
    const isOver =
      (limitBytes > 0 && box.inboxBytes + bytes > limitBytes) ||
      (limitMessages > 0 && box.inbox.length + 1 > limitMessages);
    if (!isOver) return undefined;
    return new StorageError(
      'quota',
      `over quota: ${box.inboxBytes}+${bytes} bytes of ${limitBytes || 'unlimited'}, ` +
        `${box.inbox.length}+1 messages of ${limitMessages || 'unlimited'}`,
    );
  }

  /** Add a message: one synchronous step, so concurrent deliveries never interleave inside it. */
  #insert(box: Mailbox, content: Buffer, givenId: string | undefined, isSeen: boolean): Entry {
    const ms = this.#now();
    const seconds = Math.floor(ms / 1000);
    const usec = Math.min(999_999, Math.max(0, Math.floor((ms - seconds * 1000) * 1000)));
    const size = wireSize(content);
    let id = givenId;
    while (id === undefined || (givenId === undefined && box.usedIds.has(id))) {
      // The generator's counter makes a repeat impossible within a process; the loop is belt and braces.
      id = deliveredName(this.#names.next({ seconds, usec }), content.length, size);
    }
    const parsed = parseMaildirName(id);
    const entry: Entry = {
      id,
      uidl: uidlFromBase(id),
      content,
      size,
      seconds: parsed?.seconds ?? seconds,
      usec: parsed?.seconds === undefined ? usec : (parsed.usec ?? 0),
      seq: this.#seq++,
      isSeen,
      isGone: false,
    };
    box.usedIds.add(id);
    insertSorted(box.inbox, entry);
    box.inboxBytes += content.length;
    return entry;
  }

  /** UPDATE (RFC 1939 section 6) for one maildrop: deletions per the mode, then the Seen step. */
  #apply(box: Mailbox, update: { deleted: Entry[]; retrieved: Entry[] }): CommitResult {
    let deleted = 0;
    for (const entry of update.deleted) {
      if (entry.isGone) continue; // removed from outside meanwhile: nothing to do
      entry.isGone = true;
      box.inboxBytes -= entry.content.length;
      if (this.#deletionMode === 'trash') {
        entry.trashedAt = this.#now();
        box.trash.push(entry);
      }
      deleted++;
    }
    if (deleted > 0) {
      const kept = box.inbox.filter((e) => !e.isGone);
      box.inbox.splice(0, box.inbox.length, ...kept);
    }
    let seen = 0;
    for (const entry of update.retrieved) {
      if (entry.isGone || entry.isSeen) continue;
      entry.isSeen = true;
      seen++;
    }
    return { deleted, seen };
  }
}

/** One session's exclusive snapshot. */
class MemoryMaildrop implements Maildrop {
  readonly user: string;
  readonly messages: readonly MessageInfo[];
  readonly #entries: readonly Entry[];
  readonly #box: Mailbox;
  readonly #apply: (update: { deleted: Entry[]; retrieved: Entry[] }) => CommitResult;
  #state: 'open' | 'committed' | 'released' = 'open';

  constructor(
    user: string,
    entries: readonly Entry[],
    box: Mailbox,
    apply: (update: { deleted: Entry[]; retrieved: Entry[] }) => CommitResult,
  ) {
    this.user = user;
    this.#entries = entries;
    this.messages = Object.freeze(entries.map((e) => Object.freeze({ uidl: e.uidl, size: e.size })));
    this.#box = box;
    this.#apply = apply;
  }

  async openMessage(index: number, options: OpenMessageOptions = {}): Promise<Readable> {
    const entry = this.#entries[index];
    if (entry === undefined) throw new StorageError('not-found', `no message at index ${index}`);
    if (entry.isGone) throw new StorageError('not-found', `message ${entry.uidl} is gone`);
    const lines = options.bodyLines;
    if (lines !== undefined && (!Number.isSafeInteger(lines) || lines < 0)) {
      throw new StorageError('permanent', `bodyLines must be a non-negative integer, got ${lines}`);
    }
    const wire = lines === undefined ? toWireBuffer(entry.content) : topOfMessageBuffer(entry.content, lines);
    // toWireBuffer may hand back the stored buffer itself: never let a consumer write into the store.
    const bytes = wire === entry.content ? Buffer.from(wire) : wire;
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += CHUNK) chunks.push(bytes.subarray(at, at + CHUNK));
    return Readable.from(chunks, { objectMode: false });
  }

  async readMessage(index: number): Promise<FramedMessage> {
    const entry = this.#entries[index];
    if (entry === undefined) throw new StorageError('not-found', `no message at index ${index}`);
    if (entry.isGone) throw new StorageError('not-found', `message ${entry.uidl} is gone`);
    // Always a fresh buffer: the caller owns it and the store's bytes stay untouched.
    return toMultilineBuffer(entry.content);
  }

  async commit(update: MaildropUpdate): Promise<CommitResult> {
    if (this.#state !== 'open') {
      throw new StorageError('permanent', `commit after ${this.#state === 'committed' ? 'commit' : 'release'}`);
    }
    try {
      const pick = (indexes: ReadonlySet<number>, what: string): Entry[] =>
        [...indexes].map((i) => {
          const entry = this.#entries[i];
          if (entry === undefined) throw new StorageError('permanent', `${what} index ${i} is not in the snapshot`);
          return entry;
        });
      const deleted = pick(update.deleted, 'deleted');
      const deletedSet = new Set(deleted);
      const retrieved = pick(update.retrieved, 'retrieved').filter((e) => !deletedSet.has(e));
      // Validation above throws before anything changes: nothing half-done.
      return this.#apply({ deleted, retrieved });
    } finally {
      this.#state = 'committed';
      this.#unlock();
    }
  }

  async release(): Promise<void> {
    if (this.#state === 'open') this.#state = 'released';
    this.#unlock();
  }

  #unlock(): void {
    if (this.#box.holder === this) this.#box.holder = undefined;
  }
}

/** Read the whole content into stored form; undefined when over maxBytes (the source is still drained). */
async function readContent(request: DeliveryRequest): Promise<Buffer | undefined> {
  const maxBytes = request.maxBytes;
  if (Buffer.isBuffer(request.content)) {
    if (maxBytes !== undefined && request.content.length > maxBytes) return undefined;
    return ownCopy(toStoredBuffer(request.content), request.content);
  }
  const decoder = new StoredDecoder();
  const parts: Buffer[] = [];
  let received = 0;
  let isTooLarge = false;
  try {
    for await (const chunk of request.content) {
      if (isTooLarge) continue; // drain: the front-end must see the end of DATA to reply
      received += chunk.length;
      if (maxBytes !== undefined && received > maxBytes) {
        isTooLarge = true;
        parts.length = 0;
        continue;
      }
      // A front-end may reuse its chunk buffers after yielding them.
      parts.push(ownCopy(decoder.decode(chunk), chunk));
    }
  } catch (err) {
    throw new StorageError('temporary', 'cannot read the message content', { cause: err });
  }
  if (isTooLarge) return undefined;
  parts.push(decoder.end());
  return Buffer.concat(parts);
}

/** `out` if the decoder allocated it, else a copy: the store never holds memory a caller owns. */
function ownCopy(out: Buffer, input: Uint8Array): Buffer {
  return out.buffer === input.buffer ? Buffer.from(out) : out;
}

function withPrefix(body: Buffer, prefix: DeliveryRequest['prefix'], recipient: MailUser): Buffer {
  if (prefix === undefined) return body;
  const raw = prefix(recipient);
  const stored = toStoredBuffer(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw);
  return stored.length === 0 ? body : Buffer.concat([stored, body]);
}

/** The layout's rule for a path component (maildir/layout.ts): the same names are refused by both stores. */
function checkedName(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\x00-\x1f\x7f]/.test(name)) {
    throw new StorageError('invalid-name', `invalid user name ${JSON.stringify(name)}`);
  }
  return name;
}

function nameOf(user: MailUser | string): string {
  return typeof user === 'string' ? user : user.name;
}

function positive(n: number): number {
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

function compareEntries(a: Entry, b: Entry): number {
  return a.seconds - b.seconds || a.usec - b.usec || a.seq - b.seq;
}

/** Insert keeping DESIGN.md's order; a new delivery almost always goes last, so look from the end. */
function insertSorted(list: Entry[], entry: Entry): void {
  let at = list.length;
  while (at > 0 && compareEntries(list[at - 1]!, entry) > 0) at--;
  list.splice(at, 0, entry);
}

function view(entry: Entry): MemoryMessage {
  return {
    id: entry.id,
    uidl: entry.uidl,
    content: Buffer.from(entry.content),
    size: entry.size,
    isSeen: entry.isSeen,
  };
}
