/**
 * Delivery into Maildirs and flat folders (DESIGN.md "Delivery", "Stored
 * bytes"; the Maildir protocol, https://cr.yp.to/proto/maildir.html).
 *
 * Maildir: write `tmp/<unique>` (0600), fsync it, rename it to
 * `new/<unique>,S=<stored>,W=<wire>`, fsync `new/`; only then is the copy
 * reported ok. Flat folder: `.<unique>.tmp` in the folder, fsync, rename to
 * `<unique>.eml`, fsync the folder. A reader never sees a partial message:
 * until the rename nothing is in `new/` (or under a listed name), and every
 * failure removes the temporary file.
 *
 * The content is read once, converted to stored form (CRLF -> LF, a lone CR
 * kept: storage/wire.ts) and written into the first recipient's temporary
 * file; each further recipient gets its own file, with its own prefix
 * (Return-Path, Received ... for <rcpt>) followed by the body bytes copied
 * from the first file. Directory fsyncs of concurrent deliveries are shared
 * (group-commit.ts); file fsyncs never are.
 */
import { constants } from 'node:fs';
import * as path from 'node:path';
import { StorageError, storageErrorFrom } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { silentLogger } from '../../log/logger.js';
import type { DeliveryOutcome, DeliveryRequest, MailUser } from '../store.js';
import { StoredDecoder, WireSizeCounter, toStoredBuffer } from '../wire.js';
import { deliveredName, UniqueNameGenerator } from './filename.js';
import type { FsLayer } from './fs.js';
import { nodeFs } from './fs.js';
import { createMaildir } from './create-maildir.js';
import { GroupCommit } from './group-commit.js';
import type { FolderForm } from './layout.js';
import { maildirPaths } from './layout.js';
import {
  checkQuota,
  exceeds,
  isUnlimited,
  quotaLimitsFor,
  quotaUsage,
  recordDelta,
  type QuotaContext,
  type QuotaLimits,
  type QuotaUsage,
} from './quota.js';

/** Where a recipient's mail goes, as the store resolved it (layout.ts resolveUserDir + detectForm). */
export interface ResolvedFolder {
  readonly dir: string;
  readonly form: FolderForm;
}

export type FolderResolver = (user: MailUser) => Promise<ResolvedFolder>;

/**
 * Counters shared with the store (StoreStats) and benchmarks. Mutable on
 * purpose: the store passes one object to its deliverer and batch code.
 */
export interface DeliveryCounters {
  /** Copies durably delivered. */
  delivered: number;
  /** Copies that failed (any kind). */
  failed: number;
  /** All fsyncs: files plus directories. */
  fsyncs: number;
  fileFsyncs: number;
  dirFsyncs: number;
}

export function createDeliveryCounters(): DeliveryCounters {
  return { delivered: 0, failed: 0, fsyncs: 0, fileFsyncs: 0, dirFsyncs: 0 };
}

export interface MaildirDelivererOptions {
  readonly fs?: FsLayer;
  readonly logger?: Logger;
  /** Host part of unique names; default os.hostname(). */
  readonly hostname?: string;
  /**
   * Give new files and folders to the user's uid/gid (when the MailUser has
   * both). Default: when running as root, as DESIGN.md "Files are created
   * 0600 in 0700 folders" says.
   */
  readonly chownToUser?: boolean;
  /** Quota for users whose MailUser.quotaBytes is undefined; 0 = unlimited (default). */
  readonly defaultQuotaBytes?: number;
  readonly defaultQuotaMessages?: number;
  /** Count `.Trash/` in the quota (see quota.ts). Default false. */
  readonly countTrashInQuota?: boolean;
  readonly stats?: DeliveryCounters;
  /** Unique-name source; default a generator for `hostname`. */
  readonly names?: UniqueNameGenerator;
  /** Clock for the quota file's staleness rule. */
  readonly now?: () => number;
}

/** Copy buffer size for further recipients, and the most octets gathered into one write of the message. */
const CHUNK = 64 * 1024;
/** Attempts at a fresh unique name when one is taken (another host with the same name and pid). */
const NAME_ATTEMPTS = 3;
const LF = 0x0a;

/** Per-recipient state of one delivery. */
interface Copy {
  readonly user: MailUser;
  readonly limits: QuotaLimits;
  dir?: string;
  form?: 'maildir' | 'flat';
  owner?: { readonly uid: number; readonly gid: number } | undefined;
  /** Quota usage read before writing (undefined when unlimited). */
  usage?: QuotaUsage;
  prefix?: Buffer;
  prefixWire?: number;
  unique?: string;
  tmpPath?: string | undefined;
  /** The open temporary file (FsLayer.openFd). */
  fd?: number | undefined;
  stored?: number;
  wire?: number;
  error?: StorageError;
  id?: string;
}

export class MaildirDeliverer {
  readonly #fs: FsLayer;
  readonly #logger: Logger;
  readonly #names: UniqueNameGenerator;
  readonly #chown: boolean;
  readonly #defaultQuotaBytes: number;
  readonly #defaultQuotaMessages: number;
  readonly #countTrash: boolean;
  readonly #stats: DeliveryCounters;
  readonly #now: () => number;
  readonly #commit: GroupCommit;
  /** Folder creations in flight, so concurrent first deliveries to one user share them. */
  readonly #creating = new Map<string, Promise<void>>();
  /** Folder checks in flight by user, so concurrent deliveries to one user share them (#resolveFolder). */
  readonly #resolving = new Map<string, Promise<ResolvedFolder>>();

  constructor(options: MaildirDelivererOptions = {}) {
    this.#fs = options.fs ?? nodeFs;
    this.#logger = options.logger ?? silentLogger();
    this.#names =
      options.names ?? new UniqueNameGenerator(options.hostname === undefined ? {} : { hostname: options.hostname });
    this.#chown = options.chownToUser ?? process.getuid?.() === 0;
    this.#defaultQuotaBytes = options.defaultQuotaBytes ?? 0;
    this.#defaultQuotaMessages = options.defaultQuotaMessages ?? 0;
    this.#countTrash = options.countTrashInQuota ?? false;
    this.#stats = options.stats ?? createDeliveryCounters();
    this.#now = options.now ?? Date.now;
    this.#commit = new GroupCommit(this.#fs, () => {
      this.#stats.dirFsyncs += 1;
      this.#stats.fsyncs += 1;
    });
  }

  get stats(): Readonly<DeliveryCounters> {
    return this.#stats;
  }

  /**
   * Deliver `request` to each recipient: one outcome per recipient, in
   * order. An ok outcome is durable (file fsynced, renamed, directory
   * fsynced). A failed one carries a StorageError and left no file behind.
   * Rejects only when the content itself cannot be read (StorageError
   * 'temporary'), after removing every temporary file. The content is always
   * read to its end, even when nothing can be stored (over the size limit,
   * disk full), so a front-end streaming SMTP DATA into it stays in step.
   */
  async deliver(request: DeliveryRequest, resolve: FolderResolver): Promise<DeliveryOutcome[]> {
    const copies: Copy[] = request.recipients.map((user) => ({
      user,
      limits: quotaLimitsFor(user, this.#defaultQuotaBytes, this.#defaultQuotaMessages),
    }));
    // Folder checks and the first temporary file are made while the content
    // streams in, not before: a message shorter than CHUNK is gathered in
    // memory meanwhile. Opening waits behind the fsyncs of concurrent
    // deliveries in libuv's pool (0.8 ms at 20 senders), and the content
    // would wait for it on the way to the 250.
    const ready = this.#prepareAndOpen(copies, request, resolve);
    let primary: Copy | undefined;
    try {
      const body = await this.#streamBody(request, ready);
      primary = await ready;
      if (body.tooLarge) {
        const limit = request.maxBytes ?? 0;
        for (const copy of copies) {
          this.#fail(copy, new StorageError('too-large', `message exceeds ${limit} octets`));
        }
      } else if (primary !== undefined && primary.error === undefined) {
        await this.#copyToOthers(copies, primary, body);
      } else {
        // The content went nowhere (no recipient could take it, or writing
        // the first file failed): everyone still waiting shares that fate.
        const reason = primary?.error;
        for (const copy of copies) {
          if (copy.error === undefined) {
            this.#fail(
              copy,
              reason === undefined
                ? new StorageError('temporary', 'message could not be stored')
                : new StorageError(reason.kind, `message not stored: ${reason.message}`, { cause: reason }),
            );
          }
        }
      }
    } catch (err) {
      // Only the content source can get here (see #streamBody): no outcome
      // can be given, so no file may stay.
      await ready;
      await Promise.all(copies.map((copy) => this.#discard(copy)));
      throw err instanceof StorageError
        ? err
        : new StorageError('temporary', 'message content could not be read', { cause: err });
    }

    await Promise.all(copies.map((copy) => this.#commitCopy(copy)));
    return copies.map((copy) => this.#outcome(copy));
  }

  /** Every copy prepared, then the first file opened. Never rejects: failures are the copies' errors. */
  async #prepareAndOpen(copies: readonly Copy[], request: DeliveryRequest, resolve: FolderResolver): Promise<Copy | undefined> {
    await Promise.all(copies.map((copy) => this.#prepare(copy, request, resolve)));
    return this.#openPrimary(copies);
  }

  /** Resolve the folder, create it if missing, check quota, build the prefix. No file for the message yet. */
  async #prepare(copy: Copy, request: DeliveryRequest, resolve: FolderResolver): Promise<void> {
    const user = copy.user;
    try {
      const folder = await this.#resolveFolder(user, resolve);
      copy.dir = folder.dir;
      copy.owner =
        this.#chown && user.uid !== undefined && user.gid !== undefined ? { uid: user.uid, gid: user.gid } : undefined;
      if (folder.form === 'missing') {
        await this.#createMaildir(folder.dir, copy.owner);
        copy.form = 'maildir';
      } else {
        copy.form = folder.form;
      }
      const prefix = request.prefix?.(user);
      const stored = prefix === undefined ? Buffer.alloc(0) : toStoredBuffer(toBuffer(prefix));
      // The prefix must end with a line end (the port says so); add one
      // rather than glue the first line of the message onto a header.
      copy.prefix = stored.length > 0 && stored[stored.length - 1] !== LF ? Buffer.concat([stored, Buffer.of(LF)]) : stored;
      const counter = new WireSizeCounter();
      counter.update(copy.prefix);
      copy.prefixWire = counter.wireSize;
      if (!isUnlimited(copy.limits)) {
        // Refuse before writing anything when the message cannot fit: its
        // stored size is at least the prefix plus half the content (every
        // CRLF becoming LF). The exact size is checked once it is known.
        const content = request.content;
        const atLeast = copy.prefix.length + (Buffer.isBuffer(content) ? Math.ceil(content.length / 2) : 0);
        const adding = { bytes: atLeast, messages: 1 };
        const usage = await quotaUsage(this.#quotaContext(copy), adding);
        if (exceeds(usage, copy.limits, adding)) {
          throw new StorageError('quota', `${user.name} is over quota`);
        }
        copy.usage = usage;
      }
    } catch (err) {
      this.#fail(copy, storageErrorFrom(err, `prepare delivery to ${user.name}`));
    }
  }

  /**
   * The store's folder check for `user` (layout, inside the root, no
   * symbolic links out, Maildir or flat), shared by the deliveries that
   * arrive while it runs: each of them uses a check that started no earlier
   * than one check's duration before it came. The check costs about a dozen
   * file-system calls, each a round trip through libuv's thread pool, which
   * fsyncs hold for milliseconds; with 20 deliveries in flight to one user,
   * doing it once per message made the thread pool, not the disk, the limit
   * (bench:smtp: about 1,050 msg/s, 1,400 with the check shared).
   */
  #resolveFolder(user: MailUser, resolve: FolderResolver): Promise<ResolvedFolder> {
    const key = `${user.name}\u0000${user.home ?? ''}`;
    const running = this.#resolving.get(key);
    if (running !== undefined) return running;
    const check = resolve(user).finally(() => {
      if (this.#resolving.get(key) === check) this.#resolving.delete(key);
    });
    this.#resolving.set(key, check);
    return check;
  }

  /** Open the temporary file of the first recipient that can take the message. */
  async #openPrimary(copies: readonly Copy[]): Promise<Copy | undefined> {
    for (const copy of copies) {
      if (copy.error !== undefined) continue;
      try {
        await this.#openTmp(copy);
        return copy;
      } catch (err) {
        this.#fail(copy, storageErrorFrom(err, `create temporary file for ${copy.user.name}`));
      }
    }
    return undefined;
  }

  /**
   * Read the whole content, writing its stored form after the primary's
   * prefix once `ready` gives the primary. Write errors fail the primary
   * (and drop its file) but reading goes on, so the source is always
   * drained. Errors of the source itself propagate (the caller cleans up
   * and rejects).
   */
  async #streamBody(request: DeliveryRequest, ready: Promise<Copy | undefined>): Promise<BodyInfo> {
    const decoder = new StoredDecoder();
    const counter = new WireSizeCounter();
    const maxBytes = request.maxBytes;
    let received = 0;
    let tooLarge = false;
    let isPrefixWritten = false;
    const write = async (data: Buffer): Promise<void> => {
      const primary = await ready;
      if (primary === undefined || primary.error !== undefined || tooLarge) return;
      // The prefix is the primary's own (Received ... for <its rcpt>), known only now.
      const prefix = isPrefixWritten ? undefined : primary.prefix;
      isPrefixWritten = true;
      const out = prefix !== undefined && prefix.length > 0 ? Buffer.concat([prefix, data]) : data;
      if (out.length === 0) return;
      try {
        this.#write(primary, out);
      } catch (err) {
        // Keep reading (the source must be drained); the copy is lost.
        this.#fail(primary, storageErrorFrom(err, `write message for ${primary.user.name}`));
        await this.#discard(primary);
      }
    };
    // The content is gathered into writes of up to CHUNK octets (the first
    // one led by the prefix): a small message (the common case) is one
    // write(2) instead of one per socket read (3-4 for 10 KB). The writes
    // are synchronous (FsLayer.openFd); CHUNK bounds how long one can hold
    // the event loop, and how much waits in memory for the file to open.
    const gathered = new Gathered(CHUNK);
    const add = async (data: Buffer): Promise<void> => {
      if (gathered.length + data.length > CHUNK) await write(gathered.take());
      if (data.length >= CHUNK) await write(data);
      else gathered.add(data);
    };

    const source: Iterable<Uint8Array> | AsyncIterable<Uint8Array> = Buffer.isBuffer(request.content)
      ? [request.content]
      : request.content;
    for await (const chunk of source) {
      if (tooLarge) continue; // drain
      received += chunk.length;
      if (maxBytes !== undefined && received > maxBytes) {
        tooLarge = true;
        const primary = await ready;
        if (primary !== undefined) await this.#discard(primary);
        continue;
      }
      const out = decoder.decode(chunk);
      if (out.length === 0) continue;
      counter.update(out);
      await add(out);
    }
    if (!tooLarge) {
      const tail = decoder.end();
      counter.update(tail);
      await add(tail);
      await write(gathered.take());
    }
    const primary = await ready;
    if (primary !== undefined && primary.error === undefined && !tooLarge) {
      primary.stored = (primary.prefix?.length ?? 0) + counter.storedSize;
      primary.wire = (primary.prefixWire ?? 0) + counter.wireSize;
    }
    return { tooLarge, storedSize: counter.storedSize, wireSize: counter.wireSize };
  }

  /** Give every other prepared recipient its own file: its prefix, then the body copied from the primary's file. */
  async #copyToOthers(copies: readonly Copy[], primary: Copy, body: BodyInfo): Promise<void> {
    const others = copies.filter((copy) => copy !== primary && copy.error === undefined);
    if (others.length === 0) return;
    await Promise.all(
      others.map(async (copy) => {
        try {
          await this.#openTmp(copy);
          if (copy.prefix !== undefined && copy.prefix.length > 0) this.#write(copy, copy.prefix);
          copy.stored = (copy.prefix?.length ?? 0) + body.storedSize;
          copy.wire = (copy.prefixWire ?? 0) + body.wireSize;
        } catch (err) {
          this.#fail(copy, storageErrorFrom(err, `create temporary file for ${copy.user.name}`));
          await this.#discard(copy);
        }
      }),
    );
    const source = primary.fd;
    if (source === undefined) return;
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, body.storedSize)));
    let position = primary.prefix?.length ?? 0;
    let left = body.storedSize;
    while (left > 0) {
      const targets = others.filter((copy) => copy.error === undefined);
      if (targets.length === 0) return;
      let n: number;
      try {
        n = await this.#fs.readFd(source, buffer, 0, Math.min(buffer.length, left), position);
        if (n === 0) throw new Error('first copy is shorter than written');
      } catch (err) {
        for (const copy of targets) {
          this.#fail(copy, storageErrorFrom(err, `copy message for ${copy.user.name}`));
          await this.#discard(copy);
        }
        return;
      }
      const chunk = buffer.subarray(0, n);
      for (const copy of targets) {
        try {
          this.#write(copy, chunk);
        } catch (err) {
          this.#fail(copy, storageErrorFrom(err, `write message for ${copy.user.name}`));
          await this.#discard(copy);
        }
      }
      position += n;
      left -= n;
    }
  }

  /** Quota, fsync, rename, directory fsync (shared), quota delta. */
  async #commitCopy(copy: Copy): Promise<void> {
    if (copy.error !== undefined) {
      await this.#discard(copy);
      return;
    }
    const { dir, form, unique, tmpPath, fd, stored, wire } = copy;
    if (
      dir === undefined ||
      form === undefined ||
      unique === undefined ||
      tmpPath === undefined ||
      fd === undefined ||
      stored === undefined ||
      wire === undefined
    ) {
      this.#fail(copy, new StorageError('temporary', `delivery to ${copy.user.name} was not prepared`));
      await this.#discard(copy);
      return;
    }
    const adding = { bytes: stored, messages: 1 };
    const paths = maildirPaths(dir);
    const id = form === 'maildir' ? deliveredName(unique, stored, wire) : unique;
    const target = form === 'maildir' ? path.join(paths.new, id) : path.join(dir, `${unique}.eml`);
    const syncDir = form === 'maildir' ? paths.new : dir;
    try {
      if (copy.usage !== undefined && exceeds(copy.usage, copy.limits, adding)) {
        // Maybe over: ask again, which recalculates maildirsize when the spec says so.
        await checkQuota(this.#quotaContext(copy), adding);
      }
      this.#stats.fileFsyncs += 1;
      this.#stats.fsyncs += 1;
      await this.#fs.fsyncFd(fd);
      copy.fd = undefined;
      this.#fs.closeFdSync(fd);
      await this.#rename(tmpPath, target);
    } catch (err) {
      this.#fail(copy, storageErrorFrom(err, `deliver to ${copy.user.name}`));
      await this.#discard(copy);
      return;
    }
    try {
      await this.#commit.sync(syncDir);
    } catch (err) {
      // The rename may not be durable: do not acknowledge, and take the
      // file back so a retry by the client does not leave two copies.
      this.#fail(copy, storageErrorFrom(err, `fsync ${syncDir}`));
      await this.#fs.unlink(target).catch((unlinkErr: unknown) => {
        this.#logger.error({ file: target, err: unlinkErr }, 'could not remove unacknowledged message');
      });
      return;
    }
    copy.tmpPath = undefined;
    copy.id = id;
    this.#stats.delivered += 1;
    if (!isUnlimited(copy.limits)) {
      // Bookkeeping only: the message is durable; a lost line is corrected by the next recalculation.
      await recordDelta(this.#fs, dir, stored, 1).catch((err: unknown) => {
        this.#logger.warn({ user: copy.user.name, err }, 'could not update maildirsize');
      });
    }
    this.#logger.debug({ user: copy.user.name, id, size: stored, wireSize: wire }, 'delivered');
  }

  /**
   * rename(), and on an error look before deciding: on NFS a retransmitted
   * RENAME can fail (ENOENT) although the first one went through. If the
   * target exists and the source does not, the rename happened.
   */
  async #rename(from: string, to: string): Promise<void> {
    try {
      await this.#fs.rename(from, to);
    } catch (err) {
      if ((await this.#exists(to)) === true && (await this.#exists(from)) === false) {
        this.#logger.warn({ from, to, err }, 'rename reported an error but happened');
        return;
      }
      throw err;
    }
  }

  /** true / false, or undefined when it cannot be told. */
  async #exists(file: string): Promise<boolean | undefined> {
    try {
      await this.#fs.lstat(file);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? false : undefined;
    }
  }

  /** Create the temporary file (0600, exclusive), owned by the user when configured. */
  async #openTmp(copy: Copy): Promise<void> {
    const { dir, form } = copy;
    if (dir === undefined || form === undefined) throw new StorageError('temporary', 'folder not resolved');
    let hasRecreatedDirs = false;
    for (let attempt = 1; ; attempt++) {
      const unique = this.#names.next();
      const tmpPath = form === 'maildir' ? path.join(dir, 'tmp', unique) : path.join(dir, `.${unique}.tmp`);
      try {
        // O_EXCL: never write into a file someone else made (the spec's "if it exists, wait and try again").
        copy.fd = await this.#fs.openFd(tmpPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' && attempt < NAME_ATTEMPTS) continue;
        if (code === 'ENOENT' && form === 'maildir' && !hasRecreatedDirs) {
          // A Maildir missing tmp/ (or new/): repair it, as Dovecot does.
          hasRecreatedDirs = true;
          await this.#createMaildir(dir, copy.owner);
          continue;
        }
        throw err;
      }
      copy.unique = unique;
      copy.tmpPath = tmpPath;
      if (copy.owner !== undefined) await this.#fs.chown(tmpPath, copy.owner.uid, copy.owner.gid);
      return;
    }
  }

  /** Synchronous: `data` is at most CHUNK octets going into the page cache (fs.ts openFd says why). */
  #write(copy: Copy, data: Buffer): void {
    const fd = copy.fd;
    if (fd === undefined) throw new StorageError('temporary', 'temporary file is not open');
    let offset = 0;
    while (offset < data.length) {
      const bytesWritten = this.#fs.writeFdSync(fd, data, offset, data.length - offset);
      if (bytesWritten <= 0) throw new StorageError('temporary', 'write made no progress');
      offset += bytesWritten;
    }
  }

  /** Close and remove a copy's temporary file, if any. Never throws. */
  async #discard(copy: Copy): Promise<void> {
    const fd = copy.fd;
    copy.fd = undefined;
    if (fd !== undefined) {
      try {
        this.#fs.closeFdSync(fd);
      } catch {
        // The descriptor is released anyway; the file goes next.
      }
    }
    const tmpPath = copy.tmpPath;
    copy.tmpPath = undefined;
    if (tmpPath === undefined) return;
    try {
      await this.#fs.unlink(tmpPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        // cleanTmp removes it after 36 hours; a dot file in a flat folder is never listed.
        this.#logger.error({ file: tmpPath, err }, 'could not remove temporary file');
      }
    }
  }

  #fail(copy: Copy, error: StorageError): void {
    if (copy.error !== undefined) return;
    copy.error = error;
    const level = error.kind === 'quota' || error.kind === 'too-large' ? 'info' : 'error';
    this.#logger[level]({ user: copy.user.name, kind: error.kind, err: error }, 'delivery failed');
  }

  #outcome(copy: Copy): DeliveryOutcome {
    if (copy.error === undefined && copy.id !== undefined) return { ok: true, user: copy.user.name, id: copy.id };
    this.#stats.failed += 1;
    return {
      ok: false,
      user: copy.user.name,
      error: copy.error ?? new StorageError('temporary', `delivery to ${copy.user.name} did not finish`),
    };
  }

  #quotaContext(copy: Copy): QuotaContext {
    return {
      fs: this.#fs,
      dir: copy.dir ?? '',
      form: copy.form ?? 'maildir',
      limits: copy.limits,
      countTrash: this.#countTrash,
      now: this.#now,
      logger: this.#logger,
      owner: copy.owner,
    };
  }

  /**
   * Make `dir` a Maildir (create-maildir.ts) before any message is
   * acknowledged in it. Concurrent calls for one folder share the work.
   */
  #createMaildir(dir: string, owner: Copy['owner']): Promise<void> {
    const running = this.#creating.get(dir);
    if (running !== undefined) return running;
    const job = this.#doCreateMaildir(dir, owner).finally(() => this.#creating.delete(dir));
    this.#creating.set(dir, job);
    return job;
  }

  async #doCreateMaildir(dir: string, owner: Copy['owner']): Promise<void> {
    await createMaildir({
      fs: this.#fs,
      dir,
      owner,
      onDirFsync: () => {
        this.#stats.dirFsyncs += 1;
        this.#stats.fsyncs += 1;
      },
    });
  }
}

interface BodyInfo {
  readonly tooLarge: boolean;
  /** Stored and wire size of the content alone (without any prefix). */
  readonly storedSize: number;
  readonly wireSize: number;
}

/**
 * Octets gathered for one write: copied in (a source may reuse its chunks
 * once the next is asked for), grown as needed up to `limit`. take() hands
 * out a view that is valid until the next add().
 */
class Gathered {
  readonly #limit: number;
  #buffer: Buffer = EMPTY_BUFFER;
  #length = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get length(): number {
    return this.#length;
  }

  /** `data.length` + length must not exceed the limit. */
  add(data: Buffer): void {
    const needed = this.#length + data.length;
    if (needed > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.#limit, Math.max(needed, 2 * this.#buffer.length, 16 * 1024)));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    data.copy(this.#buffer, this.#length);
    this.#length = needed;
  }

  take(): Buffer {
    const out = this.#buffer.subarray(0, this.#length);
    this.#length = 0;
    return out;
  }
}

const EMPTY_BUFFER = Buffer.alloc(0);

function toBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}
