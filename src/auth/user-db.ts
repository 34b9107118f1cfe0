/**
 * The user database: a Dovecot passwd-file held in memory as an
 * Authenticator (src/auth/authenticator.ts), reloaded when the file changes.
 *
 * Lookup rules (DESIGN.md "Users"), for a login or an address:
 * 1. The exact canonical name: `alice`, `alice@example.org` (the domain of
 *    a full address always matches without regard to case, RFC 5321 2.4).
 *    With `caseInsensitive`, `Alice` finds `alice` too; the user returned
 *    always carries the spelling of the file, which names the folder.
 * 2. An address in a local domain, `alice@example.org`, with no such
 *    full-address line, finds the bare user `alice` (a bare name is valid in
 *    every local domain).
 * 3. A bare login, `alice`, with no bare line, finds the full-address user
 *    of the FIRST local domain, `alice@<localDomains[0]>`, and no other: a
 *    bare login is thus never ambiguous, whatever other domains hold an
 *    `alice`. Users of other domains log in with their full address.
 * Anything that is not a valid user name (passwd-file.ts) finds nobody.
 *
 * Reloads (the watcher, or reload() on SIGHUP) swap the whole table at
 * once; a new file with any bad line is refused whole, every bad line is
 * logged, and the old table stays, so a half-edited file never locks
 * everyone out or lets a mangled line through.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import type { MailUser } from '../storage/store.js';
import { silentLogger, type Logger } from '../log/logger.js';
import type { Authenticator } from './authenticator.js';
import { formatPasswdLine, isValidUserName, parsePasswdFile, userKey } from './passwd-file.js';
import type { PasswdEntry, PasswdFields, PasswdLineError, PasswdWarning } from './passwd-file.js';
import { HashWorkerPool, type PasswordChecker } from './hash-pool.js';
import { checkPassword, sharedSecret, splitStoredPassword } from './password.js';
import { equalStrings } from './schemes/compare.js';
import { UsersFileError, describeLineErrors, readUsersFileBytes } from './users-file-error.js';

/**
 * The hash an unknown user's password is checked against when the users
 * file has no usable password to stand in (an empty file, only nologin
 * users): normally a stored password of the file's most common scheme is
 * used (UserTable.typicalHash), so "no such user" costs what a wrong
 * password costs. It has the parameters `hashPassword` gives new users
 * (ARGON2ID, 64 MiB, 3 passes); its password is random and was thrown away.
 */
export const DEFAULT_DUMMY_HASH =
  '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$IcvmCcTRUPpeIkkveXIrcA$+z1ibYKAuOAU4NrtcoxrXWydCVj63eIdFeGyqMtlDHQ';

const DEFAULT_DEBOUNCE_MS = 150;
/**
 * chokidar drops a 'change' for a path within 50 ms of the previous one (its
 * change throttle), with no trailing event. Reading no sooner than 100 ms
 * after the event that scheduled the reload sees any write it dropped.
 */
const MIN_DEBOUNCE_MS = 100;

export interface UserDatabaseOptions {
  /** Match names without regard to case (Clever POP3's switch); the file's spelling stays canonical. */
  readonly caseInsensitive?: boolean;
  /** Local domains, first one first (see the lookup rules above). */
  readonly localDomains?: readonly string[];
  /** Same as localDomains (the config's name for them); used when localDomains is absent. */
  readonly domains?: readonly string[];
  readonly logger?: Logger;
  /** Stored value checked for unknown users; default a stored password of the file's most common scheme (else DEFAULT_DUMMY_HASH). */
  readonly dummyHash?: string;
  /** Scheme for stored values without `{SCHEME}`; default CRYPT, as Dovecot's passwd-file. */
  readonly defaultScheme?: string;
  /** Quiet time after the last file event before a reload; default 150 ms, at least 100 ms. */
  readonly debounceMs?: number;
  /**
   * Threads for costly hash checks (hash-pool.ts): 0 (default) checks on the
   * event loop; a server should use defaultPoolSize() so an Argon2 check
   * (~250 ms of CPU) never stalls other sessions. close() stops them.
   */
  readonly hashWorkers?: number;
}

export interface UserDatabaseLoadOptions extends UserDatabaseOptions {
  readonly file: string;
}

export type ReloadEvent =
  | {
      readonly ok: true;
      readonly path: string;
      readonly users: number;
      /** False when the file's bytes had not changed (nothing was swapped). */
      readonly changed: boolean;
      readonly warnings: readonly PasswdWarning[];
    }
  | {
      readonly ok: false;
      readonly path: string | undefined;
      /** One line for logs. */
      readonly reason: string;
      /** The bad lines, when the file was read but refused. */
      readonly errors: readonly PasswdLineError[];
    };

export type ReloadListener = (event: ReloadEvent) => void;

/** Counters for logs and metrics. */
export interface UserDatabaseStats {
  readonly users: number;
  /** Password or digest checks that found the user and matched. */
  readonly accepted: number;
  /** Checks that failed for any reason (unknown users included). */
  readonly rejected: number;
  /** Checks for names that are no user: each cost a dummy hash check. */
  readonly unknownUsers: number;
  readonly reloads: number;
  readonly reloadsRefused: number;
}

interface UserRecord {
  readonly user: MailUser;
  readonly password: string;
  readonly nologin: boolean;
  /** The PLAIN secret for APOP/CRAM-MD5, when the password is stored PLAIN. */
  readonly secret: Buffer | undefined;
}

interface UserTable {
  readonly byKey: ReadonlyMap<string, UserRecord>;
  readonly users: readonly MailUser[];
  readonly sharedSecrets: number;
  /**
   * A stored password of the file's most common scheme (the first usable
   * one of that scheme): what an unknown user's password is checked
   * against when no dummyHash is configured, so "no such user" costs what
   * a wrong password costs in this very file. (A fixed ARGON2ID dummy made
   * an unknown user 35 times slower to refuse than a wrong SHA512-CRYPT
   * password, 1,000 times slower than a PLAIN one: user enumeration by
   * timing, found by the issue 6 timing run.) The check's result is
   * thrown away, so whose hash it is does not matter.
   */
  readonly typicalHash: string | undefined;
}

function toMailUser(entry: PasswdEntry): MailUser {
  const { home, uid, gid, quotaBytes, quotaMessages } = entry.userdb;
  return Object.freeze({
    name: entry.name,
    ...(home === undefined ? {} : { home }),
    ...(uid === undefined ? {} : { uid }),
    ...(gid === undefined ? {} : { gid }),
    ...(quotaBytes === undefined ? {} : { quotaBytes }),
    ...(quotaMessages === undefined ? {} : { quotaMessages }),
  });
}

function buildTable(entries: readonly PasswdEntry[], caseInsensitive: boolean, defaultScheme: string | undefined): UserTable {
  const byKey = new Map<string, UserRecord>();
  const users: MailUser[] = [];
  let sharedSecrets = 0;
  const byScheme = new Map<string, { count: number; first: string }>();
  for (const entry of entries) {
    const secret = sharedSecret(entry.password, defaultScheme === undefined ? {} : { defaultScheme });
    const record: UserRecord = { user: toMailUser(entry), password: entry.password, nologin: entry.userdb.nologin, secret };
    byKey.set(userKey(entry.name, caseInsensitive), record);
    users.push(record.user);
    if (secret !== undefined && !record.nologin) sharedSecrets++;
    if (!record.nologin && record.password !== '') {
      const scheme = splitStoredPassword(record.password, defaultScheme).scheme.toUpperCase();
      const seen = byScheme.get(scheme);
      if (seen === undefined) byScheme.set(scheme, { count: 1, first: record.password });
      else seen.count++;
    }
  }
  let typicalHash: string | undefined;
  let most = 0;
  for (const { count, first } of byScheme.values()) {
    if (count > most) {
      most = count;
      typicalHash = first;
    }
  }
  return { byKey, users, sharedSecrets, typicalHash };
}

function normaliseDomain(domain: string): string {
  return domain.toLowerCase().replace(/\.$/, '');
}

const MD5_HEX = /^[0-9a-fA-F]{32}$/;

export class UserDatabase implements Authenticator {
  readonly #path: string | undefined;
  readonly #caseInsensitive: boolean;
  readonly #localDomains: readonly string[];
  readonly #logger: Logger;
  /** The configured dummy, if any (else the table's typical hash, else DEFAULT_DUMMY_HASH). */
  readonly #dummyOption: string | undefined;
  readonly #defaultScheme: string | undefined;
  readonly #debounceMs: number;
  readonly #listeners = new Set<ReloadListener>();
  readonly #pool: HashWorkerPool | undefined;
  readonly #check: PasswordChecker;
  #table: UserTable;
  #content: Buffer | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reloads: Promise<unknown> = Promise.resolve();
  #closed = false;
  #stats = { accepted: 0, rejected: 0, unknownUsers: 0, reloads: 0, reloadsRefused: 0 };

  private constructor(path: string | undefined, table: UserTable, content: Buffer | undefined, options: UserDatabaseOptions) {
    this.#path = path;
    this.#table = table;
    this.#content = content;
    this.#caseInsensitive = options.caseInsensitive ?? false;
    this.#localDomains = (options.localDomains ?? options.domains ?? []).map(normaliseDomain);
    this.#logger = options.logger ?? silentLogger();
    this.#dummyOption = options.dummyHash;
    this.#defaultScheme = options.defaultScheme;
    this.#debounceMs = Math.max(MIN_DEBOUNCE_MS, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    const workers = options.hashWorkers ?? 0;
    this.#pool = workers > 0 ? new HashWorkerPool({ size: workers }) : undefined;
    this.#check = this.#pool?.check ?? checkPassword;
  }

  /**
   * Read and parse a users file. Throws UsersFileError: 'unreadable' when it
   * cannot be read, 'broken-file' (with every bad line) when any line is bad.
   * Accepts `load(path, options)` or `load({ file, ...options })`.
   */
  static async load(pathOrOptions: string | UserDatabaseLoadOptions, options: UserDatabaseOptions = {}): Promise<UserDatabase> {
    const opts = typeof pathOrOptions === 'string' ? options : pathOrOptions;
    const path = resolve(typeof pathOrOptions === 'string' ? pathOrOptions : pathOrOptions.file);
    const content = await readUsersFileBytes(path);
    const caseInsensitive = opts.caseInsensitive ?? false;
    const parsed = parsePasswdFile(content, { caseInsensitive });
    if (parsed.errors.length > 0) {
      throw new UsersFileError('broken-file', `users file ${describeLineErrors(path, parsed.errors)}`, { lines: parsed.errors });
    }
    const db = new UserDatabase(path, buildTable(parsed.entries, caseInsensitive, opts.defaultScheme), content, opts);
    db.#logWarnings(parsed.warnings);
    db.#logger.info({ file: path, users: parsed.entries.length }, 'users file loaded');
    return db;
  }

  /**
   * A database from fields in memory, for library users (no file, no
   * reload). Throws UsersFileError ('broken-file') naming every bad entry
   * by its 1-based position.
   */
  static fromEntries(entries: readonly PasswdFields[], options: UserDatabaseOptions = {}): UserDatabase {
    const caseInsensitive = options.caseInsensitive ?? false;
    const lines: string[] = [];
    const errors: PasswdLineError[] = [];
    entries.forEach((fields, i) => {
      try {
        lines.push(formatPasswdLine(fields));
      } catch (err) {
        errors.push({ line: i + 1, reason: (err as Error).message, name: fields.name });
        lines.push('# refused');
      }
    });
    const parsed = parsePasswdFile(lines.join('\n'), { caseInsensitive });
    errors.push(...parsed.errors);
    if (errors.length > 0) {
      throw new UsersFileError('broken-file', `user entries: ${describeLineErrors('entries', errors)}`, { lines: errors });
    }
    const db = new UserDatabase(undefined, buildTable(parsed.entries, caseInsensitive, options.defaultScheme), undefined, options);
    db.#logWarnings(parsed.warnings);
    return db;
  }

  /** The file this database was loaded from (absolute), if any. */
  get path(): string | undefined {
    return this.#path;
  }

  /** Number of users. */
  get size(): number {
    return this.#table.users.length;
  }

  /** Every user, in file order. */
  users(): readonly MailUser[] {
    return this.#table.users;
  }

  stats(): UserDatabaseStats {
    return { users: this.size, ...this.#stats };
  }

  lookup(loginOrAddress: string): MailUser | undefined {
    return this.#resolve(loginOrAddress)?.user;
  }

  async verifyPassword(login: string, password: string): Promise<MailUser | undefined> {
    const record = this.#resolve(login);
    // No user, no password, `nologin`, or an empty password: the same dummy
    // work as a real check, and the same answer as a wrong password.
    if (record === undefined || record.nologin || typeof password !== 'string' || password === '') {
      if (record === undefined) this.#stats.unknownUsers++;
      this.#stats.rejected++;
      await this.#dummyCheck(password);
      return undefined;
    }
    const check = await this.#check(record.password, password, this.#schemeOptions());
    if (check.ok) {
      this.#stats.accepted++;
      return record.user;
    }
    this.#stats.rejected++;
    if (check.reason !== 'mismatch') {
      // The operator's problem, not the client's: say which line to fix.
      this.#logger.warn({ user: record.user.name, reason: check.reason, detail: check.detail }, 'users file entry cannot be checked');
      await this.#dummyCheck(password);
    }
    return undefined;
  }

  async verifyDigest(
    mechanism: 'APOP' | 'CRAM-MD5',
    login: string,
    challenge: string,
    digestHex: string,
  ): Promise<MailUser | undefined> {
    const record = this.#resolve(login);
    const usable = record !== undefined && !record.nologin && record.secret !== undefined;
    // Computed for unknown users too (with a throwaway secret), so both paths cost the same.
    const secret = usable ? record.secret : DUMMY_SECRET;
    const expected =
      mechanism === 'APOP'
        ? createHash('md5').update(challenge, 'utf8').update(secret ?? DUMMY_SECRET).digest('hex')
        : createHmac('md5', secret ?? DUMMY_SECRET).update(challenge, 'utf8').digest('hex');
    const given = typeof digestHex === 'string' && MD5_HEX.test(digestHex) ? digestHex.toLowerCase() : '';
    const matches = equalStrings(expected, given.padEnd(32, '-'));
    if (record === undefined) this.#stats.unknownUsers++;
    if (usable && matches) {
      this.#stats.accepted++;
      return record.user;
    }
    this.#stats.rejected++;
    return undefined;
  }

  hasSharedSecrets(): boolean {
    return this.#table.sharedSecrets > 0;
  }

  /** Be told about every reload attempt (for logs and metrics). Returns the unsubscribe function. */
  onReload(listener: ReloadListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Re-read the file now (SIGHUP). Never rejects: the outcome is the
   * resolved event, also sent to onReload listeners and logged. Reloads run
   * one at a time, in order.
   */
  reload(): Promise<ReloadEvent> {
    const run = this.#reloads.then(() => this.#reloadNow());
    this.#reloads = run;
    return run;
  }

  /**
   * Reload when the file changes, including an atomic replace by rename
   * (how `maildird user` and most editors save). Watches the file's folder
   * (chokidar 4+ watches directories) and filters on the file name; events
   * are debounced. Resolves once the watcher is ready; never rejects
   * (watcher errors are logged). Correctness never depends on it: reload()
   * is there for SIGHUP.
   */
  async watch(): Promise<void> {
    if (this.#watcher !== undefined || this.#path === undefined || this.#closed) return;
    const file = this.#path;
    const folder = dirname(file);
    const name = basename(file);
    const watcher = chokidarWatch(folder, {
      depth: 0,
      ignoreInitial: true,
      ignored: (path: string) => path !== folder && basename(path) !== name,
    });
    this.#watcher = watcher;
    watcher.on('all', (_event, path) => {
      if (resolve(path) === file) this.#scheduleReload();
    });
    watcher.on('error', (err) => this.#logger.error({ err, file }, 'users file watcher failed'));
    await new Promise<void>((ready) => watcher.once('ready', () => ready()));
  }

  /** Stop watching, wait for a reload in progress, stop hash threads. The table stays usable (checks run inline). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = undefined;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher !== undefined) await watcher.close();
    await this.#reloads;
    await this.#pool?.close();
  }

  #scheduleReload(): void {
    if (this.#closed) return;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.reload();
    }, this.#debounceMs);
  }

  async #reloadNow(): Promise<ReloadEvent> {
    const path = this.#path;
    const event = await this.#readAndSwap(path);
    if (event.ok) this.#stats.reloads++;
    else this.#stats.reloadsRefused++;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#logger.error({ err }, 'users file reload listener failed');
      }
    }
    return event;
  }

  async #readAndSwap(path: string | undefined): Promise<ReloadEvent> {
    if (path === undefined) return { ok: false, path, reason: 'not loaded from a file', errors: [] };
    let content: Buffer;
    try {
      content = await readFile(path);
    } catch (err) {
      const reason = `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      this.#logger.error({ file: path, reason }, 'users file reload failed; keeping the previous users');
      return { ok: false, path, reason, errors: [] };
    }
    if (this.#content?.equals(content) === true) {
      this.#logger.debug({ file: path }, 'users file unchanged');
      return { ok: true, path, users: this.size, changed: false, warnings: [] };
    }
    const parsed = parsePasswdFile(content, { caseInsensitive: this.#caseInsensitive });
    if (parsed.errors.length > 0) {
      for (const { line, reason, name } of parsed.errors) {
        this.#logger.warn({ file: path, line, reason, ...(name === undefined ? {} : { user: name }) }, 'users file: bad line');
      }
      const reason = describeLineErrors(path, parsed.errors);
      this.#logger.error({ file: path, badLines: parsed.errors.length }, `users file refused, keeping the previous users: ${reason}`);
      return { ok: false, path, reason, errors: parsed.errors };
    }
    this.#table = buildTable(parsed.entries, this.#caseInsensitive, this.#defaultScheme);
    this.#content = content;
    this.#logWarnings(parsed.warnings);
    this.#logger.info({ file: path, users: parsed.entries.length }, 'users file reloaded');
    return { ok: true, path, users: parsed.entries.length, changed: true, warnings: parsed.warnings };
  }

  #logWarnings(warnings: readonly PasswdWarning[]): void {
    for (const { line, message } of warnings) this.#logger.warn({ file: this.#path, line }, `users file: ${message}`);
  }

  #schemeOptions(): { defaultScheme?: string } {
    return this.#defaultScheme === undefined ? {} : { defaultScheme: this.#defaultScheme };
  }

  /** The stored value an unknown user's password is checked against now (see UserTable.typicalHash). */
  get dummyHash(): string {
    return this.#dummyOption ?? this.#table.typicalHash ?? DEFAULT_DUMMY_HASH;
  }

  async #dummyCheck(password: unknown): Promise<void> {
    await this.#check(this.dummyHash, typeof password === 'string' && password !== '' ? password : 'x', this.#schemeOptions());
  }

  /** The lookup rules of the module comment. */
  #resolve(input: string): UserRecord | undefined {
    if (typeof input !== 'string' || !isValidUserName(input)) return undefined;
    const table = this.#table;
    const get = (name: string) => table.byKey.get(userKey(name, this.#caseInsensitive));
    const exact = get(input);
    if (exact !== undefined) return exact;
    const at = input.indexOf('@');
    if (at === -1) {
      const first = this.#localDomains[0];
      return first === undefined ? undefined : get(`${input}@${first}`);
    }
    if (!this.#localDomains.includes(normaliseDomain(input.slice(at + 1)))) return undefined;
    return get(input.slice(0, at));
  }
}

const DUMMY_SECRET = Buffer.from('maildird-no-such-user');
