/**
 * One locked POP3 snapshot of a Maildir or flat folder (the port's
 * Maildrop): messages in wire form, and the UPDATE batch at QUIT.
 *
 * RETR (DESIGN "Where the speed comes from"): a small message is read with
 * one read and converted in one pass (wire.ts, Buffer.indexOf loops); a
 * large one streams from the file through the converter with backpressure,
 * so memory stays flat whatever the size. Either way the file is open (or
 * already read) before openMessage resolves, so the front-end sends `+OK`
 * only when the message is really there (STYLE 5).
 */
import { constants } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { StorageError, storageErrorFrom } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { CommitResult, FramedMessage, Maildrop, MaildropUpdate, MessageInfo, OpenMessageOptions } from '../store.js';
import { toMultilineBuffer, toWireBuffer, toWireChunks, topOfMessage, topOfMessageBuffer } from '../wire.js';
import { DEFAULT_INFO_SEPARATORS, parseMaildirName } from './filename.js';
import type { FileHandle, FsLayer } from './fs.js';
import { applyBatch, planBatch, type BatchMessage, type BatchMode } from './journal.js';
import type { ListingCache } from './listing-cache.js';
import type { MaildirPaths } from './layout.js';
import type { MaildropLock } from './lock.js';
import type { ListedForm, ScanEntry } from './scan.js';

/** Messages up to this size are read whole with one read; larger ones stream. */
export const SMALL_MESSAGE_BYTES = 512 * 1024;
/**
 * Reused read buffers (one per concurrent RETR): the stored bytes live only
 * until they are converted, so only the wire form is allocated per message.
 */
const SCRATCH_BYTES = 128 * 1024;
/**
 * readMessage reads files whose size is known to be under this with one
 * synchronous open/read/close (FsLayer.readSync), into one buffer shared by
 * every maildrop of the process: synchronous code cannot interleave, and the
 * framed result is always a copy. Profiling bench:pop3 showed the
 * promise-based open, read and close (three thread-pool round trips and a
 * FileHandle per message) as the largest share of RETR's CPU time.
 */
const SYNC_READ_BYTES = 128 * 1024;
const syncScratch = Buffer.allocUnsafe(SYNC_READ_BYTES);
/** Read size for streamed messages. */
const STREAM_CHUNK_BYTES = 64 * 1024;

export interface MaildirMaildropOptions {
  readonly user: string;
  readonly paths: MaildirPaths;
  readonly form: ListedForm;
  /** The snapshot, oldest first. */
  readonly entries: readonly ScanEntry[];
  /** What the front-end sees; same order as entries (UIDLs may differ in `uidlMode: 'dovecot'`). */
  readonly messages: readonly MessageInfo[];
  readonly lock: MaildropLock;
  readonly fs: FsLayer;
  readonly logger: Logger;
  readonly deletionMode: BatchMode;
  readonly separator: string;
  readonly cache?: ListingCache | undefined;
  readonly owner?: { readonly uid: number; readonly gid: number } | undefined;
  readonly countTrashInQuota?: boolean | undefined;
  /** Called once when the maildrop is released (after commit or release). */
  readonly onClose?: (() => void) | undefined;
}

type State = 'open' | 'committing' | 'closed';

export class MaildirMaildrop implements Maildrop {
  readonly user: string;
  readonly messages: readonly MessageInfo[];
  readonly #o: MaildirMaildropOptions;
  /** Where a message was found after another program renamed it (flags changed, new/ -> cur/). */
  readonly #moved = new Map<number, ScanEntry>();
  readonly #scratch: Buffer[] = [];
  #state: State = 'open';
  #closing: Promise<void> | undefined;

  constructor(options: MaildirMaildropOptions) {
    this.#o = options;
    this.user = options.user;
    this.messages = options.messages;
  }

  async openMessage(index: number, options: OpenMessageOptions = {}): Promise<Readable> {
    if (this.#state !== 'open') throw new StorageError('permanent', 'maildrop is closed');
    const entry = this.#entry(index);
    const bodyLines = options.bodyLines;
    if (bodyLines !== undefined && (!Number.isSafeInteger(bodyLines) || bodyLines < 0)) {
      throw new StorageError('permanent', `bad line count ${bodyLines}`);
    }
    const { handle, found } = await this.#open(index, entry);
    let isHandedOver = false;
    const scratch = this.#scratch.pop() ?? Buffer.allocUnsafe(SCRATCH_BYTES);
    try {
      // The common case, a name with S=: one read of S+1 bytes tells the
      // whole file (a short read is its end), no fstat. Otherwise, or when
      // the file is longer than S= says, fstat decides small or streamed.
      let stored: Buffer | undefined;
      const known = found.storedSize;
      if (known !== undefined && known < scratch.length) {
        const { bytesRead } = await handle.read(scratch, 0, known + 1, 0);
        if (bytesRead <= known) stored = scratch.subarray(0, bytesRead);
      }
      if (stored === undefined) {
        const st = await handle.stat();
        if (!st.isFile()) throw new StorageError('not-found', `message ${index + 1} is not a file`);
        if (st.size > SMALL_MESSAGE_BYTES) {
          isHandedOver = true;
          return this.#stream(handle, found, bodyLines);
        }
        stored = await readWhole(handle, st.size, scratch);
      }
      if (bodyLines !== undefined) return bufferStream(owned(topOfMessageBuffer(stored, bodyLines), scratch));
      const wire = owned(toWireBuffer(stored), scratch);
      this.#checkSize(found, wire.length);
      return bufferStream(wire);
    } catch (err) {
      throw storageErrorFrom(err, `read message ${index + 1}`);
    } finally {
      this.#scratch.push(scratch);
      // Not awaited: the bytes are in memory, the reply need not wait for close(2).
      if (!isHandedOver) handle.close().catch(() => undefined);
    }
  }

  async readMessage(index: number): Promise<FramedMessage> {
    if (this.#state !== 'open') throw new StorageError('permanent', 'maildrop is closed');
    const entry = this.#entry(index);
    // The stored size is S= when the name has it; otherwise the listed wire
    // size bounds it (the wire form is never shorter than the file). One
    // byte more than the bound: a short read is the whole file, no fstat.
    const bound = entry.storedSize ?? entry.size;
    if (bound < SYNC_READ_BYTES) {
      let length = -1;
      try {
        length = this.#o.fs.readSync(entry.path, READ_FLAGS, syncScratch.subarray(0, bound + 1));
      } catch {
        // Gone (maybe renamed by another reader), a symlink, an I/O error:
        // the asynchronous path below looks for a moved file and maps the error.
      }
      if (length >= 0 && length <= bound) {
        const framed = toMultilineBuffer(syncScratch.subarray(0, length));
        this.#checkSize(entry, framed.wireSize);
        return framed;
      }
    }
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of await this.openMessage(index)) chunks.push(chunk as Buffer);
    } catch (err) {
      throw storageErrorFrom(err, `read message ${index + 1}`);
    }
    // The wire form again through the framer: its CRLFs stay as they are,
    // so this only stuffs and terminates.
    return toMultilineBuffer(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
  }

  async commit(update: MaildropUpdate): Promise<CommitResult> {
    if (this.#state !== 'open') throw new StorageError('permanent', 'maildrop already committed or released');
    this.#state = 'committing';
    try {
      await this.#o.lock.assertHeld();
      const deleted = [...update.deleted].map((i) => this.#batchMessage(i));
      const seen = [...update.retrieved].map((i) => this.#batchMessage(i));
      const plan = planBatch(this.#o.paths, this.#o.form, { deleted, seen }, this.#o.deletionMode, this.#o.separator);
      const result = await applyBatch(this.#o.fs, this.#o.paths, plan, {
        logger: this.#o.logger,
        owner: this.#o.owner,
        quota: { countTrash: this.#o.countTrashInQuota ?? false },
      });
      if (result.pending > 0) {
        this.#o.logger.warn({ pending: result.pending }, 'expunge committed; unlinks left to journal recovery');
      }
      this.#o.logger.info(
        { deleted: result.deleted, seen: result.seen, mode: this.#o.deletionMode },
        'maildrop update applied',
      );
      return { deleted: result.deleted, seen: result.seen };
    } catch (err) {
      const e = storageErrorFrom(err, 'update');
      // The port promises 'temporary' or 'permanent' from commit.
      throw e.kind === 'temporary' || e.kind === 'permanent'
        ? e
        : new StorageError('temporary', e.message, { cause: err });
    } finally {
      await this.release();
    }
  }

  release(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'closed';
    try {
      await this.#o.cache?.flush(this.#o.paths);
    } finally {
      await this.#o.lock.release();
      this.#o.onClose?.();
    }
  }

  #entry(index: number): ScanEntry {
    const entry = Number.isSafeInteger(index) ? this.#o.entries[index] : undefined;
    if (entry === undefined) throw new StorageError('not-found', `no message ${index + 1}`);
    return this.#moved.get(index) ?? entry;
  }

  #batchMessage(index: number): BatchMessage {
    const entry = this.#entry(index);
    return { path: entry.path, location: entry.dir };
  }

  /**
   * Open the message's file. When it is gone, another Maildir reader may
   * have renamed it (new/ -> cur/, flags changed): the base name is the
   * identity, so look for it once in cur/ and new/ before saying not-found.
   */
  async #open(index: number, entry: ScanEntry): Promise<{ handle: FileHandle; found: ScanEntry }> {
    try {
      return { handle: await openNoFollow(this.#o.fs, entry.path), found: entry };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, `open message ${index + 1}`);
    }
    const moved = this.#o.form === 'maildir' ? await this.#find(entry) : undefined;
    if (moved !== undefined) {
      try {
        const handle = await openNoFollow(this.#o.fs, moved.path);
        this.#moved.set(index, moved);
        return { handle, found: moved };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, `open message ${index + 1}`);
      }
    }
    throw new StorageError('not-found', `message ${index + 1} is gone`);
  }

  async #find(entry: ScanEntry): Promise<ScanEntry | undefined> {
    const separators = [...new Set([this.#o.separator, ...DEFAULT_INFO_SEPARATORS])];
    for (const dir of ['cur', 'new'] as const) {
      let names: string[];
      try {
        names = await this.#o.fs.readdir(this.#o.paths[dir]);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.startsWith(entry.base) || (dir === entry.dir && name === entry.name)) continue;
        if (parseMaildirName(name, separators)?.base !== entry.base) continue;
        return { ...entry, dir, name, path: path.join(this.#o.paths[dir], name) };
      }
    }
    return undefined;
  }

  /** Large messages: the file streams through the converter; closing the result closes the file. */
  #stream(handle: FileHandle, entry: ScanEntry, bodyLines: number | undefined): Readable {
    const file = handle.createReadStream({ highWaterMark: STREAM_CHUNK_BYTES, autoClose: false });
    const source = bodyLines === undefined ? toWireChunks(file) : topOfMessage(file, bodyLines);
    const checkSize = bodyLines === undefined ? (size: number) => this.#checkSize(entry, size) : undefined;
    const out = Readable.from(wrapErrors(source, checkSize, entry.path), { objectMode: false });
    // Whatever ends the stream (end, error, destroy), the file is closed exactly once.
    out.once('close', () => {
      file.destroy();
      handle.close().catch(() => undefined);
    });
    return out;
  }

  /** DESIGN "Wire size": W= is trusted for listings; a wrong one is logged and corrected for next time. */
  #checkSize(entry: ScanEntry, wireSize: number): void {
    if (wireSize === entry.size) return;
    this.#o.logger.warn(
      { path: entry.path, listed: entry.size, actual: wireSize },
      'message size differs from its listing; corrected for the next session',
    );
    this.#o.cache?.correctSize(this.#o.paths, entry.path, wireSize);
  }
}

async function* wrapErrors(
  source: AsyncIterable<Buffer>,
  onComplete: ((wireSize: number) => void) | undefined,
  file: string,
): AsyncGenerator<Buffer, void, undefined> {
  let total = 0;
  try {
    for await (const chunk of source) {
      total += chunk.length;
      yield chunk;
    }
  } catch (err) {
    throw storageErrorFrom(err, `read ${path.basename(file)}`);
  }
  onComplete?.(total);
}

/** O_NOFOLLOW: a message file replaced by a symlink is never followed out of the root (invariant 4). */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

function openNoFollow(fs: FsLayer, file: string): Promise<FileHandle> {
  return fs.open(file, READ_FLAGS);
}

/**
 * A result of the wire converters that may still be (a view of) the reused
 * scratch buffer, which the next message overwrites: copy it out then.
 */
function owned(result: Buffer, scratch: Buffer): Buffer {
  return result.buffer === scratch.buffer ? Buffer.from(result) : result;
}

/**
 * Read a small file whole, into `scratch` when it fits. Asking for one byte
 * more than fstat said makes the common case one read: a short read past
 * `size` is the end of the file. A file that grew since (it should not:
 * Maildir files never change) is read on to its end.
 */
async function readWhole(handle: FileHandle, size: number, scratch: Buffer): Promise<Buffer> {
  let buf = size < scratch.length ? scratch : Buffer.allocUnsafe(size + 1);
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    const wanted = buf.length - length;
    const { bytesRead } = await handle.read(buf, length, wanted, length);
    length += bytesRead;
    if (bytesRead === 0 || (bytesRead < wanted && length >= size)) return buf.subarray(0, length);
  }
}

/** A whole message as a stream: one chunk, already there. */
function bufferStream(data: Buffer): Readable {
  const stream = new Readable({ read() {} });
  if (data.length > 0) stream.push(data);
  stream.push(null);
  return stream;
}
