/**
 * The Maildir store: the MailStore port over a tree of Maildir (and flat
 * `*.eml`) folders, one per user under a root (DESIGN "Storage model").
 *
 * openMaildrop: resolve the folder (layout.ts, never outside the root),
 * create a Maildir for a new user, take the lock (lock.ts), roll a leftover
 * batch journal forward (journal.ts), clean stale tmp files
 * (tmp-cleanup.ts), list (scan.ts, through the listing cache), and hand out
 * a MaildirMaildrop. deliver: delegate to deliver.ts with the same folder
 * resolution.
 */
import { hostname as osHostname } from 'node:os';
import * as path from 'node:path';
import fg from 'fast-glob';
import { StorageError, storageErrorFrom } from '../../errors.js';
import { silentLogger, type Logger } from '../../log/logger.js';
import type {
  DeliveryOutcome,
  DeliveryRequest,
  Maildrop,
  MailStore,
  MailUser,
  MessageInfo,
  StoreStats,
  TrashPurgeResult,
} from '../store.js';
import { createMaildir, type MaildirOwner } from './create-maildir.js';
import { createDeliveryCounters, MaildirDeliverer, type DeliveryCounters, type ResolvedFolder } from './deliver.js';
import { DovecotUidlistReader, dovecotUidl } from './dovecot-uidlist.js';
import { DEFAULT_INFO_SEPARATORS } from './filename.js';
import { nodeFs, type FsLayer } from './fs.js';
import { recoverJournal } from './journal.js';
import {
  DEFAULT_LAYOUT,
  detectForm,
  ensureInsideRoot,
  maildirPaths,
  resolveUserDir,
  type FolderForm,
  type MaildirPaths,
} from './layout.js';
import { ListingCache } from './listing-cache.js';
import { sweepLeftovers } from './leftovers.js';
import { acquireMaildropLock, DEFAULT_LOCK_STALE_MS, linuxProcessProbe, type LockOptions, type MaildropLock } from './lock.js';
import { MaildirMaildrop } from './maildrop.js';
import { scanMaildrop, type ListedForm, type Listing } from './scan.js';
import { cleanTmp, isFlatTmpName, TMP_MAX_AGE_MS } from './tmp-cleanup.js';
import { purgeTrashFolder } from './trash-purge.js';

export type DeletionMode = 'trash' | 'expunge';
export type InfoSeparator = ':' | ';' | '!';
export type UidlMode = 'filename' | 'dovecot';

export interface MaildirStoreOptions {
  /** The tree: one folder per user below it. Must exist. */
  readonly root: string;
  /** Layout template (`%u`, `%d/%n`, `%h/Maildir`, ...); default `%u`. */
  readonly layout?: string | undefined;
  /** `%d` for bare user names. */
  readonly defaultDomain?: string | undefined;
  /** What QUIT does with DELE-marked messages; default 'trash'. */
  readonly deletionMode?: DeletionMode | undefined;
  /** Info separator for names maildird writes; default ':'. All three are read. */
  readonly infoSeparator?: InfoSeparator | undefined;
  /** 'dovecot': UIDLs from a `dovecot-uidlist` where it lists the message. Default 'filename'. */
  readonly uidlMode?: UidlMode | undefined;
  /** Quota for users whose MailUser.quotaBytes is undefined; 0 or undefined: unlimited. */
  readonly defaultQuotaBytes?: number | undefined;
  readonly defaultQuotaMessages?: number | undefined;
  /** Count `.Trash/` in the quota; default false. */
  readonly countTrashInQuota?: boolean | undefined;
  readonly fs?: FsLayer | undefined;
  readonly logger?: Logger | undefined;
  /** Host in unique names and lock files; default os.hostname(). */
  readonly hostname?: string | undefined;
  readonly lock?: { readonly refreshMs?: number; readonly staleMs?: number } | undefined;
  /** Listing cache: entries kept in memory (default 1,000,000) and whether to keep the file beside each Maildir (default yes). */
  readonly cache?: { readonly maxMemoryEntries?: number; readonly isPersistent?: boolean } | undefined;
  /** Roll leftover batch journals forward at open (DESIGN "The batch journal"); default true. */
  readonly recoverAtStart?: boolean | undefined;
  /**
   * At open, sweep every user folder's stale tmp files (the 36-hour rule and
   * a killed maildird's leftovers), each under its maildrop lock, as a
   * login does; default false (serve turns it on: its start-up self-check).
   * Not for `%h` layouts, whose folders cannot be found without the users.
   */
  readonly sweepTmpAtStart?: boolean | undefined;
  /** Clock (ms) for the tmp/ cleanup; default Date.now. */
  readonly now?: (() => number) | undefined;
}

/** A tmp/ folder is swept at most this often per process (the 36-hour rule needs no more). */
const TMP_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const JOURNAL_NAME = 'maildird-batch.journal';

export class MaildirStore implements MailStore {
  readonly #root: string;
  readonly #layout: string;
  readonly #defaultDomain: string | undefined;
  readonly #deletionMode: DeletionMode;
  readonly #separator: InfoSeparator;
  readonly #uidlMode: UidlMode;
  readonly #fs: FsLayer;
  readonly #logger: Logger;
  readonly #lockOptions: LockOptions;
  readonly #cache: ListingCache;
  readonly #uidlists: DovecotUidlistReader;
  readonly #counters: DeliveryCounters;
  readonly #deliverer: MaildirDeliverer;
  readonly #countTrash: boolean;
  readonly #now: () => number;
  readonly #isRoot: boolean;
  /** tmp/ folders swept, with when. */
  readonly #swept = new Map<string, number>();
  /** Dovecot-mode message lists, per listing entries and uidlist, so a warm login maps nothing again. */
  readonly #dovecotMessages = new WeakMap<object, WeakMap<object, readonly MessageInfo[]>>();
  readonly #open = new Set<MaildirMaildrop>();
  #isClosed = false;

  private constructor(options: MaildirStoreOptions, root: string) {
    this.#root = root;
    this.#layout = options.layout ?? DEFAULT_LAYOUT;
    this.#defaultDomain = options.defaultDomain;
    this.#deletionMode = options.deletionMode ?? 'trash';
    this.#separator = options.infoSeparator ?? ':';
    this.#uidlMode = options.uidlMode ?? 'filename';
    this.#fs = options.fs ?? nodeFs;
    this.#logger = options.logger ?? silentLogger();
    this.#countTrash = options.countTrashInQuota ?? false;
    this.#now = options.now ?? Date.now;
    this.#isRoot = process.getuid?.() === 0;
    this.#lockOptions = {
      logger: this.#logger,
      ...(options.hostname === undefined ? {} : { hostname: options.hostname }),
      ...(options.lock?.refreshMs === undefined ? {} : { refreshMs: options.lock.refreshMs }),
      ...(options.lock?.staleMs === undefined ? {} : { staleMs: options.lock.staleMs }),
    };
    this.#cache = new ListingCache({
      fs: this.#fs,
      logger: this.#logger,
      maxMemoryEntries: options.cache?.maxMemoryEntries,
      isPersistent: options.cache?.isPersistent,
    });
    this.#uidlists = new DovecotUidlistReader(this.#fs);
    this.#counters = createDeliveryCounters();
    this.#deliverer = new MaildirDeliverer({
      fs: this.#fs,
      logger: this.#logger,
      stats: this.#counters,
      defaultQuotaBytes: options.defaultQuotaBytes ?? 0,
      defaultQuotaMessages: options.defaultQuotaMessages ?? 0,
      countTrashInQuota: this.#countTrash,
      now: this.#now,
      ...(options.hostname === undefined ? {} : { hostname: options.hostname }),
    });
  }

  /**
   * Open the store on an existing root. Checks the layout template, then
   * (unless `recoverAtStart` is false) rolls forward every leftover batch
   * journal in the tree. Rejects with StorageError when the root is missing
   * or not a folder, and 'invalid-name' for a layout that cannot work.
   */
  static async open(options: MaildirStoreOptions): Promise<MaildirStore> {
    const fs = options.fs ?? nodeFs;
    const root = path.resolve(options.root);
    try {
      const st = await fs.stat(root);
      if (!st.isDirectory()) throw new StorageError('permanent', `root ${root} is not a folder`);
    } catch (err) {
      throw storageErrorFrom(err, `root ${root}`);
    }
    // A template error shows now, not at the first login.
    resolveUserDir(root, options.layout ?? DEFAULT_LAYOUT, { name: 'probe', home: 'probe' }, 'example.org');
    const store = new MaildirStore(options, root);
    if (options.recoverAtStart ?? true) await store.#recoverAll();
    if (options.sweepTmpAtStart === true) await store.#sweepTmpAll();
    return store;
  }

  async openMaildrop(user: MailUser): Promise<Maildrop> {
    this.#assertOpen();
    const { dir, form } = await this.#folder(user, true);
    const paths = maildirPaths(dir);
    const listedForm: ListedForm = form === 'missing' ? 'maildir' : form;
    const lock = await acquireMaildropLock(this.#fs, paths, this.#lockOptions);
    try {
      await recoverJournal(this.#fs, paths, this.#logger);
      await this.#sweepTmp(paths, listedForm);
      const listing = await this.#list(paths, listedForm);
      const messages = this.#uidlMode === 'dovecot' ? await this.#withDovecotUidls(paths, listing) : listing.entries;
      const maildrop: MaildirMaildrop = new MaildirMaildrop({
        user: user.name,
        paths,
        form: listedForm,
        entries: listing.entries,
        messages,
        lock,
        fs: this.#fs,
        logger: this.#logger.child({ user: user.name }),
        deletionMode: this.#deletionMode,
        separator: this.#separator,
        cache: this.#cache,
        owner: this.#ownerOf(user),
        countTrashInQuota: this.#countTrash,
        onClose: () => this.#open.delete(maildrop),
      });
      this.#open.add(maildrop);
      return maildrop;
    } catch (err) {
      await lock.release();
      throw storageErrorFrom(err, `open maildrop of ${user.name}`);
    }
  }

  deliver(request: DeliveryRequest): Promise<DeliveryOutcome[]> {
    this.#assertOpen();
    return this.#deliverer.deliver(request, (user) => this.#folder(user, false));
  }

  async purgeTrash(user: MailUser, olderThan: Date): Promise<TrashPurgeResult> {
    this.#assertOpen();
    try {
      // Never creates the folder; checks it and its Trash against the root (symlinks included).
      const { dir, form } = await this.#folder(user, false);
      if (form === 'missing') return { purged: 0, bytes: 0 };
      return await purgeTrashFolder({
        fs: this.#fs,
        paths: maildirPaths(dir),
        form,
        olderThanMs: olderThan.getTime(),
        countTrashInQuota: this.#countTrash,
        logger: this.#logger.child({ user: user.name }),
      });
    } catch (err) {
      throw storageErrorFrom(err, `purge the Trash of ${user.name}`);
    }
  }

  stats(): StoreStats {
    return { delivered: this.#counters.delivered, fsyncs: this.#counters.fsyncs };
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    if (this.#open.size > 0) {
      this.#logger.warn({ open: this.#open.size }, 'store closed with maildrops still open: releasing them');
      await Promise.all([...this.#open].map((m) => m.release()));
    }
    await this.#cache.drain();
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new StorageError('temporary', 'store is closed');
  }

  /**
   * The user's folder, checked against the root (symlinks included). With
   * `create`, a missing folder becomes a Maildir; delivery creates its own.
   */
  async #folder(user: MailUser, create: boolean): Promise<ResolvedFolder> {
    const dir = resolveUserDir(this.#root, this.#layout, user, this.#defaultDomain);
    await ensureInsideRoot(this.#fs, this.#root, dir);
    let form: FolderForm = await detectForm(this.#fs, dir);
    if (form === 'missing' && create) {
      await this.#createMaildir(dir, this.#ownerOf(user));
      form = 'maildir';
    }
    if (form === 'maildir') {
      // cur/, new/ or tmp/ as symlinks out of the root would be read (or written) outside it.
      for (const sub of ['cur', 'new', 'tmp']) await this.#checkLink(path.join(dir, sub));
    }
    // So would Trash: a trash-mode QUIT links messages into it (both forms). Found
    // by test/fuzz/abuse.test.ts: a `.Trash` link out of the root received the mail.
    const trash = maildirPaths(dir);
    for (const p of [trash.trashDir, trash.trashCur, trash.trashNew, trash.trashTmp]) await this.#checkLink(p);
    return { dir, form };
  }

  async #checkLink(p: string): Promise<void> {
    try {
      if ((await this.#fs.lstat(p)).isSymbolicLink()) await ensureInsideRoot(this.#fs, this.#root, p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw storageErrorFrom(err, `check ${p}`);
    }
  }

  #ownerOf(user: MailUser): MaildirOwner | undefined {
    if (!this.#isRoot || user.uid === undefined || user.gid === undefined) return undefined;
    return { uid: user.uid, gid: user.gid };
  }

  /** A new user's Maildir (create-maildir.ts), inside the root. */
  async #createMaildir(dir: string, owner: MaildirOwner | undefined): Promise<void> {
    try {
      if (await createMaildir({ fs: this.#fs, dir, owner, root: this.#root })) this.#logger.info({ dir }, 'created Maildir');
    } catch (err) {
      throw storageErrorFrom(err, `create ${dir}`);
    }
  }

  /**
   * The Maildir spec's 36-hour rule and the leftovers of dead processes
   * (leftovers.ts), at most once an hour per folder in this process: a
   * restarted server sweeps at each maildrop's first login.
   */
  async #sweepTmp(paths: MaildirPaths, form: ListedForm): Promise<void> {
    const now = this.#now();
    const last = this.#swept.get(paths.dir);
    if (last !== undefined && now - last < TMP_SWEEP_INTERVAL_MS && now >= last) return;
    if (form === 'maildir') await cleanTmp(this.#fs, paths.tmp, now, TMP_MAX_AGE_MS, this.#logger);
    else await cleanTmp(this.#fs, paths.dir, now, TMP_MAX_AGE_MS, this.#logger, { match: isFlatTmpName });
    // What a killed maildird left (tmp/ files, lock scratch, cache temp) goes at once when its process is gone.
    await sweepLeftovers(this.#fs, paths, {
      host: this.#lockOptions.hostname ?? osHostname(),
      form,
      probe: linuxProcessProbe,
      staleMs: this.#lockOptions.staleMs ?? DEFAULT_LOCK_STALE_MS,
      logger: this.#logger,
    });
    this.#swept.set(paths.dir, now);
    if (this.#swept.size > 100_000) this.#swept.clear();
  }

  /** List through the cache. The scan's "now" is the file system's clock where we can see it. */
  async #list(paths: MaildirPaths, form: ListedForm): Promise<Listing> {
    const previous = await this.#cache.load(paths);
    const now = await this.#fsNow(paths);
    const result = await scanMaildrop(paths, form, {
      fs: this.#fs,
      logger: this.#logger,
      separators: [...new Set([this.#separator, ...DEFAULT_INFO_SEPARATORS])],
      previous,
      now: () => now,
    });
    // Written in the background; the maildrop waits for it before it unlocks.
    if (result.isChanged) void this.#cache.save(paths, result.listing);
    return result.listing;
  }

  /**
   * The lock file was just written, so its mtime is the file server's "now"
   * (DESIGN: hosts sharing a tree disagree about time). The earlier of that
   * and the local clock is the safe choice for the granularity rule.
   */
  async #fsNow(paths: MaildirPaths): Promise<number> {
    const local = Date.now();
    try {
      return Math.min(local, (await this.#fs.stat(paths.lockFile)).mtimeMs);
    } catch {
      return local;
    }
  }

  /**
   * `uidlMode: 'dovecot'`: messages Dovecot listed get the UIDL Dovecot gave
   * them; the rest keep file-name UIDLs. A Dovecot UIDL that would repeat
   * another message's UIDL is not used (UIDLs must stay distinct).
   */
  async #withDovecotUidls(paths: MaildirPaths, listing: Listing): Promise<readonly MessageInfo[]> {
    let list;
    try {
      list = await this.#uidlists.read(paths.dovecotUidlist);
    } catch (err) {
      this.#logger.warn({ path: paths.dovecotUidlist, err }, 'dovecot-uidlist not readable; using file-name UIDLs');
      return listing.entries;
    }
    if (list === undefined) return listing.entries;
    const memo = this.#dovecotMessages.get(listing.entries)?.get(list);
    if (memo !== undefined) return memo;
    const uidls = listing.entries.map((e) => {
      const record = e.uidl === e.baseUidl ? list.records.get(e.base) : undefined;
      return record === undefined ? e.uidl : dovecotUidl(list, record);
    });
    const seen = new Map<string, number>();
    uidls.forEach((u, i) => seen.set(u, (seen.get(u) ?? 0) + 1));
    const messages = listing.entries.map((e, i) => {
      const uidl = uidls[i] as string;
      if (uidl !== e.uidl && (seen.get(uidl) ?? 0) > 1) {
        this.#logger.warn({ path: e.path, uidl }, 'Dovecot UIDL repeats another; keeping the file-name UIDL');
        return { uidl: e.uidl, size: e.size };
      }
      return { uidl, size: e.size };
    });
    let inner = this.#dovecotMessages.get(listing.entries);
    if (inner === undefined) {
      inner = new WeakMap();
      this.#dovecotMessages.set(listing.entries, inner);
    }
    inner.set(list, messages);
    return messages;
  }

  /**
   * The start-up tmp sweep: every folder the layout can name (a `%h` layout
   * names none: home folders hold other things), each under its lock; a
   * folder in use is skipped (its session swept it at login). Never throws.
   */
  async #sweepTmpAll(): Promise<void> {
    if (this.#layout.includes('%h')) return;
    const segments = this.#layout.split('/').filter((s) => s.length > 0);
    let folders: string[];
    try {
      folders = await fg(segments.map((s) => (s.includes('%') ? '*' : fg.escapePath(s))).join('/'), {
        cwd: this.#root,
        absolute: true,
        onlyDirectories: true,
        followSymbolicLinks: false,
        dot: false,
        deep: segments.length,
        suppressErrors: true,
      });
    } catch (err) {
      this.#logger.error({ err, root: this.#root }, 'cannot look for user folders to sweep');
      return;
    }
    for (const dir of folders) {
      const paths = maildirPaths(dir);
      let lock: MaildropLock | undefined;
      try {
        await ensureInsideRoot(this.#fs, this.#root, dir);
        const form = await detectForm(this.#fs, dir);
        if (form === 'missing') continue;
        if (form === 'maildir') await this.#checkLink(paths.tmp);
        lock = await acquireMaildropLock(this.#fs, paths, this.#lockOptions);
        await this.#sweepTmp(paths, form);
      } catch (err) {
        if (!(err instanceof StorageError && err.kind === 'in-use')) this.#logger.warn({ err, dir }, 'start-up tmp sweep skipped a folder');
      } finally {
        await lock?.release();
      }
    }
  }

  /** Roll every leftover batch journal in the tree forward, each under its maildrop's lock. */
  async #recoverAll(): Promise<void> {
    const segments = this.#layout.split('/').filter((s) => s.length > 0);
    const hasHome = this.#layout.includes('%h');
    const pattern = hasHome
      ? `**/${JOURNAL_NAME}`
      : `${segments.map((s) => (s.includes('%') ? '*' : fg.escapePath(s))).join('/')}/${JOURNAL_NAME}`;
    let journals: string[];
    try {
      journals = await fg(pattern, {
        cwd: this.#root,
        absolute: true,
        onlyFiles: true,
        followSymbolicLinks: false,
        dot: false,
        deep: hasHome ? 8 : segments.length + 1,
        suppressErrors: true,
      });
    } catch (err) {
      this.#logger.error({ err, root: this.#root }, 'cannot look for leftover batch journals');
      return;
    }
    for (const journal of journals) {
      const paths = maildirPaths(path.dirname(journal));
      let lock: MaildropLock | undefined;
      try {
        lock = await acquireMaildropLock(this.#fs, paths, this.#lockOptions);
        await recoverJournal(this.#fs, paths, this.#logger);
      } catch (err) {
        // In use: the holder recovers it. Anything else shows again at that user's next login.
        if (!(err instanceof StorageError && err.kind === 'in-use')) {
          this.#logger.error({ err, journal }, 'leftover batch journal not recovered');
        }
      } finally {
        await lock?.release();
      }
    }
  }
}
