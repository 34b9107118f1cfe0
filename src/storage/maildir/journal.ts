/**
 * The deletion batch (DESIGN "Deletion", "The batch journal", "Seen"): what
 * a POP3 QUIT changes in a maildrop, applied as one batch that is either
 * done or not done, never half done, even across a crash.
 *
 * A batch is a list of moves and removals, in this order:
 *   1. Seen: `new/<name>` -> `cur/<name><sep>2,S` for messages retrieved and
 *      not deleted (Maildir form only; the UIDL, from the base name, stays).
 *   2. Deletion, per the store's mode:
 *      trash:   `<maildrop>/<name>` -> `.Trash/cur/<name>` (a Maildir; a name
 *               without info gets `<sep>2,`, since a file in cur/ carries an
 *               info) or `.Trash/<name>` (a flat folder);
 *      expunge: unlink.
 *
 * Before the first file moves, the batch is written as JSON lines to
 * `<userdir>/maildird-batch.journal` and fsynced (with its folder). The
 * first line is a header, `{"maildird-batch":1,"mode":"trash","entries":N}`;
 * then one line per step, `{"from":"new/x","to":"cur/x:2,S"}`, or `"to":
 * null` for an unlink. Paths are relative to the user folder, so a tree
 * mounted at another path on another host still recovers, and recovery
 * refuses any path that would leave the folder (a tampered journal cannot
 * make us touch other files). The header's count tells a complete journal
 * from one torn by a crash while it was written; a torn journal is dropped,
 * since nothing moves before the journal is complete and durable.
 *
 * Moves are link() then unlink(), never rename(): rename would silently
 * replace a file that already has the target name. A name already taken in
 * Trash (by the same base name with any flags, in `.Trash/cur/` or
 * `.Trash/new/`, or by another message of the same batch) gets `-<n>` at the
 * end of the unique part of its base name, before any `,S=`/`,W=` fields
 * (so the sizes stay readable), with the smallest n >= 2 that is free:
 * `1700000000.M1P2Q3.host,S=5,W=6:2,S` -> `1700000000.M1P2Q3.host-2,S=5,W=6:2,S`;
 * flat `x.eml` -> `x-2.eml`, `x,S=5.eml` -> `x-2,S=5.eml`. A message restored from Trash therefore keeps
 * its UIDL, except in that clash, where two files could not share one.
 *
 * After the last step, every directory touched is fsynced, then the journal
 * is removed and the user folder fsynced; only then does applyBatch resolve
 * (and QUIT answer +OK).
 *
 * Failures. In trash mode every step can be undone: on a failure the moves
 * already made are reversed (newest first) and the call rejects with
 * StorageError('temporary'). The undo is itself journalled: the journal is
 * atomically replaced by the reversed moves before they run, so a crash
 * during the undo finishes the undo, not the batch. In expunge mode an
 * unlink cannot be undone, so the batch is ordered to make the first unlink
 * its commit point: every source is checked before the journal is written,
 * the Seen moves (undoable) run first, the unlinks last. A failure before
 * the first unlink is undone as above; once an unlink has happened the
 * batch is committed: the remaining unlinks are still tried, and any that
 * fail stay in the (durable) journal, which recovery finishes when the
 * maildrop is next locked. So "nothing half-done" for expunge means: either
 * no message is removed, or the journal guarantees all of them will be.
 *
 * After a crash, recoverJournal rolls the journal forward: each entry ends
 * with its file in exactly one place. It is idempotent, so a crash during
 * recovery is recovered again.
 *
 * The caller holds the maildrop lock (lock.ts) for applyBatch and
 * recoverJournal alike: a journal found by the lock holder is always a
 * leftover, never another session's live batch.
 */
import { constants } from 'node:fs';
import * as path from 'node:path';
import { StorageError, storageErrorFrom } from '../../errors.js';
import { silentLogger, type Logger } from '../../log/logger.js';
import { DEFAULT_INFO_SEPARATORS, parseMaildirName, withSeenFlag } from './filename.js';
import type { FsLayer } from './fs.js';
import type { MaildirPaths } from './layout.js';
import { recordDelta } from './quota.js';

export type BatchMode = 'trash' | 'expunge';

/** Where a snapshot message lives. */
export type MessageLocation = 'new' | 'cur' | 'flat';

/** A snapshot message the batch deletes or marks Seen. */
export interface BatchMessage {
  /** Absolute path of the file; must be inside the user folder. */
  readonly path: string;
  readonly location: MessageLocation;
}

/** One step of a plan. Paths are absolute. */
export type BatchStep =
  | { readonly kind: 'seen'; readonly from: string; readonly to: string }
  | { readonly kind: 'trash'; readonly from: string; readonly to: string }
  | { readonly kind: 'expunge'; readonly from: string };

export interface BatchPlan {
  readonly mode: BatchMode;
  readonly form: 'maildir' | 'flat';
  /** The info separator for new names (`:` unless configured `;` or `!`). */
  readonly separator: string;
  /** Seen steps first, then deletions. Trash targets are before name-clash resolution. */
  readonly steps: readonly BatchStep[];
}

export interface BatchOptions {
  readonly logger?: Logger | undefined;
  /** Owner of a newly made `.Trash` when running as root. */
  readonly owner?: { readonly uid: number; readonly gid: number } | undefined;
  /**
   * Keep the Maildir++ `maildirsize` up to date (quota.ts): removed messages
   * are recorded as negative deltas; messages moved to Trash too, unless
   * Trash counts towards the quota. Undefined: no bookkeeping.
   */
  readonly quota?: { readonly countTrash?: boolean } | undefined;
}

export interface BatchResult {
  /** Messages moved to Trash or unlinked. */
  readonly deleted: number;
  /** Messages moved from new/ to cur/ with the Seen flag. */
  readonly seen: number;
  /**
   * Expunge only: unlinks that failed after the batch was committed. They
   * stay in the journal, which recovery finishes at the next lock.
   */
  readonly pending: number;
}

/** A journal line: paths relative to the user folder; `to` null for an unlink. */
interface JournalEntry {
  readonly from: string;
  readonly to: string | null;
}

type JournalMode = BatchMode | 'undo';

const JOURNAL_VERSION = 1;

/**
 * Build the batch for a QUIT: `seen` are the messages retrieved (ones also
 * in `deleted` are skipped), `deleted` those marked by DELE. Pure: name
 * clashes in Trash are resolved by applyBatch, which looks at the folder.
 * Throws StorageError('invalid-name') for a path outside the user folder.
 */
export function planBatch(
  paths: MaildirPaths,
  form: 'maildir' | 'flat',
  messages: { readonly deleted: readonly BatchMessage[]; readonly seen: readonly BatchMessage[] },
  mode: BatchMode,
  separator = ':',
): BatchPlan {
  const deleted = new Set(messages.deleted.map((m) => m.path));
  const planned = new Set<string>(); // each file once, however often the caller lists it
  const steps: BatchStep[] = [];
  const separators = separatorsWith(separator);
  if (form === 'maildir') {
    for (const m of messages.seen) {
      if (m.location !== 'new' || deleted.has(m.path) || planned.has(m.path)) continue;
      planned.add(m.path);
      const name = fileName(paths, m);
      steps.push({ kind: 'seen', from: m.path, to: path.join(paths.cur, withSeenFlag(name, separator)) });
    }
  }
  for (const m of messages.deleted) {
    if (planned.has(m.path)) continue;
    planned.add(m.path);
    const name = fileName(paths, m);
    if (mode === 'expunge') {
      steps.push({ kind: 'expunge', from: m.path });
    } else if (form === 'flat') {
      steps.push({ kind: 'trash', from: m.path, to: path.join(paths.trashDir, name) });
    } else {
      const parsed = parseMaildirName(name, separators);
      const trashName = parsed?.info === undefined ? `${name}${separator}2,` : name;
      steps.push({ kind: 'trash', from: m.path, to: path.join(paths.trashCur, trashName) });
    }
  }
  return { mode, form, separator, steps };
}

function separatorsWith(separator: string): string[] {
  return [...new Set([separator, ...DEFAULT_INFO_SEPARATORS])];
}

/** The message's file name, after checking it lives where `location` says. */
function fileName(paths: MaildirPaths, m: BatchMessage): string {
  const expected = m.location === 'flat' ? paths.dir : m.location === 'new' ? paths.new : paths.cur;
  const name = path.basename(m.path);
  if (path.resolve(m.path) !== path.resolve(expected, name) || name === '' || name === '.' || name === '..') {
    throw new StorageError('invalid-name', `${m.path} is not a message of ${paths.dir}`);
  }
  return name;
}

/** A step after resolution against the folder: checked source, final target, quota size. */
interface ResolvedStep {
  readonly kind: BatchStep['kind'];
  readonly from: string;
  readonly to: string | null;
  readonly bytes: number;
}

/**
 * Apply `plan` through the journal (see the module comment). Resolves with
 * counts once every change is durable; rejects with StorageError('temporary'
 * or 'permanent') with nothing half-done. Messages that vanished since the
 * snapshot (another program removed them) are skipped.
 */
export async function applyBatch(
  fs: FsLayer,
  paths: MaildirPaths,
  plan: BatchPlan,
  options: BatchOptions = {},
): Promise<BatchResult> {
  try {
    return await runBatch(fs, paths, plan, options);
  } catch (err) {
    throw toBatchError(err);
  }
}

/**
 * The port's contract for commit(): 'permanent' when an operator must act
 * (permissions, a read-only or corrupt tree), otherwise 'temporary' (a
 * full disk included: the client may try again later).
 */
function toBatchError(err: unknown): StorageError {
  const e = storageErrorFrom(err, 'batch');
  if (e.kind === 'temporary' || e.kind === 'permanent') return e;
  return new StorageError(e.kind === 'invalid-name' ? 'permanent' : 'temporary', e.message, { cause: err });
}

async function runBatch(fs: FsLayer, paths: MaildirPaths, plan: BatchPlan, options: BatchOptions): Promise<BatchResult> {
  const logger = options.logger ?? silentLogger();
  const steps = await resolveSteps(fs, paths, plan, logger);
  if (steps.length === 0) return { deleted: 0, seen: 0, pending: 0 };
  if (steps.some((s) => s.kind === 'trash')) await ensureTrash(fs, paths, plan.form, options.owner);

  await writeJournal(fs, paths, plan.mode, steps, logger);

  const touched = new Set<string>();
  let committed = false; // expunge: an unlink has happened
  let failedUnlinks = 0;
  let failure: unknown;
  let failedAt = -1;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    touched.add(path.dirname(step.from));
    try {
      if (step.to === null) {
        await unlinkChecked(fs, step.from);
        committed = true;
      } else {
        touched.add(path.dirname(step.to));
        await moveChecked(fs, step.from, step.to);
      }
    } catch (err) {
      if (committed) {
        // Past the commit point: keep going; the journal finishes the rest.
        failedUnlinks += 1;
        logger.error({ file: step.from, err }, 'expunge: unlink failed; left for journal recovery');
        continue;
      }
      failure = err;
      failedAt = i;
      break;
    }
  }

  if (failure === undefined) {
    try {
      await fsyncAll(fs, touched);
    } catch (err) {
      if (!committed) {
        failure = err;
        failedAt = steps.length - 1;
      } else {
        logger.error({ err }, 'expunge: directory fsync failed; the journal is kept for recovery');
        failedUnlinks = steps.filter((s) => s.to === null).length;
      }
    }
  }

  if (failure !== undefined) {
    await undo(fs, paths, steps.slice(0, failedAt + 1), logger, failure);
    throw new StorageError('temporary', `batch failed and was undone: ${storageErrorFrom(failure, 'batch').message}`, {
      cause: failure,
    });
  }

  if (failedUnlinks === 0) await removeJournal(fs, paths, logger);
  await recordQuota(fs, paths, steps, options, logger);
  const deleted = steps.filter((s) => s.kind !== 'seen').length;
  logger.debug({ dir: paths.dir, mode: plan.mode, deleted, seen: steps.length - deleted }, 'batch applied');
  return { deleted, seen: steps.length - deleted, pending: failedUnlinks };
}

/**
 * Check every source (vanished ones are skipped), pick free Trash names and
 * skip Seen moves whose target exists (a broken tree: the same name in new/
 * and cur/). Seen steps stay first, unlinks last.
 */
async function resolveSteps(fs: FsLayer, paths: MaildirPaths, plan: BatchPlan, logger: Logger): Promise<ResolvedStep[]> {
  const separators = separatorsWith(plan.separator);
  const sizes = new Map<string, number>();
  const present: BatchStep[] = [];
  for (const step of plan.steps) {
    try {
      const st = await fs.lstat(step.from);
      const parsed = plan.form === 'maildir' ? parseMaildirName(path.basename(step.from), separators) : undefined;
      sizes.set(step.from, parsed?.size ?? st.size);
      present.push(step);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, `stat ${step.from}`);
      logger.info({ file: step.from }, 'message vanished before the batch: skipped');
    }
  }
  const takenBases = present.some((s) => s.kind === 'trash')
    ? await trashBases(fs, paths, plan.form, separators)
    : new Set<string>();
  const seen: ResolvedStep[] = [];
  const moves: ResolvedStep[] = [];
  const unlinks: ResolvedStep[] = [];
  for (const step of present) {
    const bytes = sizes.get(step.from) ?? 0;
    switch (step.kind) {
      case 'seen':
        if (await exists(fs, step.to)) {
          logger.warn({ file: step.from, target: step.to }, 'Seen target exists (same name in new/ and cur/): not moved');
          continue;
        }
        seen.push({ kind: 'seen', from: step.from, to: step.to, bytes });
        break;
      case 'trash':
        moves.push({ kind: 'trash', from: step.from, to: freeTrashName(step.to, plan.form, separators, takenBases), bytes });
        break;
      case 'expunge':
        unlinks.push({ kind: 'expunge', from: step.from, to: null, bytes });
        break;
      default:
        assertNever(step);
    }
  }
  return [...seen, ...moves, ...unlinks];
}

function assertNever(value: never): never {
  throw new Error(`unexpected ${JSON.stringify(value)}`);
}

/** Base names already in Trash (any flags, cur/ or new/ for a Maildir; `*.eml` for a flat Trash). */
async function trashBases(
  fs: FsLayer,
  paths: MaildirPaths,
  form: 'maildir' | 'flat',
  separators: readonly string[],
): Promise<Set<string>> {
  const bases = new Set<string>();
  const dirs = form === 'maildir' ? [paths.trashCur, paths.trashNew] : [paths.trashDir];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw storageErrorFrom(err, `read ${dir}`);
    }
    for (const name of names) bases.add(baseOf(name, form, separators));
  }
  return bases;
}

function baseOf(name: string, form: 'maildir' | 'flat', separators: readonly string[]): string {
  if (form === 'flat') return name.endsWith('.eml') ? name.slice(0, -4) : name;
  return parseMaildirName(name, separators)?.base ?? name;
}

/** `target` if its base name is free in Trash, else the base with the smallest free `-<n>` (n >= 2). Marks it taken. */
function freeTrashName(target: string, form: 'maildir' | 'flat', separators: readonly string[], taken: Set<string>): string {
  const dir = path.dirname(target);
  const name = path.basename(target);
  const base = baseOf(name, form, separators);
  const rest = name.slice(base.length); // `.eml`, or the info with its separator
  if (!taken.has(base)) {
    taken.add(base);
    return target;
  }
  // Before the `,S=`/`,W=` fields, so they stay parseable.
  const comma = base.indexOf(',');
  const unique = comma < 0 ? base : base.slice(0, comma);
  const fields = comma < 0 ? '' : base.slice(comma);
  for (let n = 2; ; n++) {
    const candidate = `${unique}-${n}${fields}`;
    if (!taken.has(candidate)) {
      taken.add(candidate);
      return path.join(dir, `${candidate}${rest}`);
    }
  }
}

/** Make `.Trash` (with cur/new/tmp for a Maildir), 0700, and fsync what was made. */
async function ensureTrash(
  fs: FsLayer,
  paths: MaildirPaths,
  form: 'maildir' | 'flat',
  owner: BatchOptions['owner'],
): Promise<void> {
  const madeTop = await makeDir(fs, paths.trashDir, owner);
  let madeSub = false;
  if (form === 'maildir') {
    for (const sub of [paths.trashCur, paths.trashNew, paths.trashTmp]) {
      if (await makeDir(fs, sub, owner)) madeSub = true;
    }
  }
  try {
    if (madeSub) await fs.fsyncDir(paths.trashDir);
    if (madeTop) await fs.fsyncDir(paths.dir);
  } catch (err) {
    throw storageErrorFrom(err, `fsync ${paths.trashDir}`);
  }
}

async function makeDir(fs: FsLayer, dir: string, owner: BatchOptions['owner']): Promise<boolean> {
  try {
    await fs.mkdir(dir, 0o700);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw storageErrorFrom(err, `mkdir ${dir}`);
  }
  if (owner !== undefined) {
    try {
      await fs.chown(dir, owner.uid, owner.gid);
    } catch (err) {
      throw storageErrorFrom(err, `chown ${dir}`);
    }
  }
  return true;
}

function encodeJournal(paths: MaildirPaths, mode: JournalMode, entries: readonly { from: string; to: string | null }[]): Buffer {
  const lines = [JSON.stringify({ 'maildird-batch': JOURNAL_VERSION, mode, entries: entries.length })];
  for (const e of entries) {
    const line: JournalEntry = { from: relativeTo(paths, e.from), to: e.to === null ? null : relativeTo(paths, e.to) };
    lines.push(JSON.stringify(line));
  }
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

function relativeTo(paths: MaildirPaths, abs: string): string {
  const rel = path.relative(paths.dir, abs);
  if (!isSafeRelative(rel)) throw new StorageError('invalid-name', `${abs} is outside ${paths.dir}`);
  return rel.split(path.sep).join('/');
}

/** A relative path of plain components: no `..`, `.`, empty parts, NUL or absolute start. */
function isSafeRelative(rel: string): boolean {
  if (rel.length === 0 || rel.includes('\0') || path.isAbsolute(rel) || rel.includes('\\')) return false;
  return rel.split(/[/]/).every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Write the journal with O_EXCL, fsync it and the user folder. A leftover journal is recovered first. */
async function writeJournal(
  fs: FsLayer,
  paths: MaildirPaths,
  mode: BatchMode,
  steps: readonly ResolvedStep[],
  logger: Logger,
): Promise<void> {
  const data = encodeJournal(paths, mode, steps);
  for (let attempt = 0; ; attempt++) {
    let handle;
    try {
      handle = await fs.open(paths.journalFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt === 0) {
        logger.warn({ journal: paths.journalFile }, 'leftover batch journal found before a batch: recovering it first');
        await recoverJournal(fs, paths, logger);
        continue;
      }
      throw storageErrorFrom(err, `create ${paths.journalFile}`);
    }
    try {
      await handle.write(data, 0, data.length, 0);
      await fs.fsync(handle);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.unlink(paths.journalFile).catch(() => undefined);
      throw storageErrorFrom(err, `write ${paths.journalFile}`);
    }
    try {
      await handle.close();
      await fs.fsyncDir(paths.dir);
    } catch (err) {
      await fs.unlink(paths.journalFile).catch(() => undefined);
      throw storageErrorFrom(err, `write ${paths.journalFile}`);
    }
    return;
  }
}

/** Replace the journal atomically (a new file, fsynced, renamed over it). */
async function replaceJournal(fs: FsLayer, paths: MaildirPaths, data: Buffer): Promise<void> {
  const next = `${paths.journalFile}.next`;
  const handle = await fs.open(next, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await handle.write(data, 0, data.length, 0);
    await fs.fsync(handle);
  } finally {
    await handle.close();
  }
  await fs.rename(next, paths.journalFile);
  await fs.fsyncDir(paths.dir);
}

async function removeJournal(fs: FsLayer, paths: MaildirPaths, logger: Logger): Promise<void> {
  try {
    await fs.unlink(paths.journalFile);
    await fs.fsyncDir(paths.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    // The batch is done and durable; a leftover journal only replays it (idempotent).
    logger.error({ journal: paths.journalFile, err }, 'cannot remove batch journal');
  }
}

/**
 * Undo the steps tried so far (newest first): journal the reversed moves,
 * roll them forward, remove the journal. If the undo fails, the reversed
 * journal stays and recovery finishes the undo at the next lock.
 */
async function undo(
  fs: FsLayer,
  paths: MaildirPaths,
  tried: readonly ResolvedStep[],
  logger: Logger,
  cause: unknown,
): Promise<void> {
  const reversed: JournalEntry[] = [];
  for (const step of [...tried].reverse()) {
    if (step.to !== null) reversed.push({ from: step.to, to: step.from });
  }
  logger.error({ dir: paths.dir, err: cause, undoing: reversed.length }, 'batch failed: undoing it');
  try {
    if (reversed.length > 0) {
      await replaceJournal(fs, paths, encodeJournal(paths, 'undo', reversed));
      const touched = await rollForward(fs, paths, reversed, logger);
      await fsyncAll(fs, touched);
    }
    await fs.unlink(paths.journalFile);
    await fs.fsyncDir(paths.dir);
  } catch (err) {
    logger.error({ dir: paths.dir, err }, 'undo of a failed batch failed: the journal finishes it at the next lock');
  }
}

/** link() then unlink(); after an error, look before deciding (NFS). */
async function moveChecked(fs: FsLayer, from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
  } catch (err) {
    if (!(await isSameFile(fs, from, to))) throw err;
  }
  await unlinkChecked(fs, from);
}

async function unlinkChecked(fs: FsLayer, file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || !(await exists(fs, file))) return;
    throw err;
  }
}

async function isSameFile(fs: FsLayer, a: string, b: string): Promise<boolean> {
  try {
    const [sa, sb] = await Promise.all([fs.lstat(a), fs.lstat(b)]);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

async function exists(fs: FsLayer, file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function fsyncAll(fs: FsLayer, dirs: Iterable<string>): Promise<void> {
  for (const dir of [...new Set(dirs)].sort()) await fs.fsyncDir(dir);
}

async function recordQuota(
  fs: FsLayer,
  paths: MaildirPaths,
  steps: readonly ResolvedStep[],
  options: BatchOptions,
  logger: Logger,
): Promise<void> {
  if (options.quota === undefined) return;
  const counted = steps.filter((s) => s.kind === 'expunge' || (s.kind === 'trash' && options.quota?.countTrash !== true));
  if (counted.length === 0) return;
  const bytes = counted.reduce((sum, s) => sum + s.bytes, 0);
  try {
    await recordDelta(fs, paths.dir, -bytes, -counted.length);
  } catch (err) {
    // Best effort: maildirsize is approximate and recalculated when it matters.
    logger.warn({ dir: paths.dir, err }, 'cannot record quota delta for the batch');
  }
}

export interface RecoveryResult {
  /** Entries the journal held. */
  readonly recovered: number;
  readonly mode: JournalMode | 'torn';
}

/**
 * Roll a leftover journal forward (at lock time and at start-up, with the
 * maildrop lock held). Resolves undefined when there is none. Each entry
 * ends with its file in exactly one place:
 *   move, source and target the same file -> unlink the source;
 *   only the source                        -> link, unlink the source;
 *   only the target                        -> done;
 *   neither                                -> logged (someone else removed it);
 *   source and target different files      -> logged, the source stays (the
 *                                             link never happened; the target
 *                                             is someone else's file);
 *   unlink                                 -> unlink the source if present.
 * Then the touched folders are fsynced and the journal removed. Rejects
 * with StorageError (journal kept) when an entry cannot be finished, or
 * 'permanent' when the journal is corrupt; the maildrop must not be served
 * until it is resolved, or a new batch would overwrite its record.
 */
export async function recoverJournal(
  fs: FsLayer,
  paths: MaildirPaths,
  logger: Logger = silentLogger(),
): Promise<RecoveryResult | undefined> {
  let raw: Buffer;
  try {
    raw = await fs.readFile(paths.journalFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storageErrorFrom(err, `read ${paths.journalFile}`);
  }
  const parsed = parseJournal(raw);
  if (parsed === 'corrupt') {
    throw new StorageError('permanent', `batch journal ${paths.journalFile} is corrupt: an operator must look at it`);
  }
  if (parsed === 'torn') {
    logger.warn({ journal: paths.journalFile }, 'torn batch journal (crash while writing it, before any move): dropped');
    await dropJournal(fs, paths);
    return { recovered: 0, mode: 'torn' };
  }
  for (const e of parsed.entries) {
    if (!isSafeRelative(e.from) || (e.to !== null && !isSafeRelative(e.to))) {
      throw new StorageError('permanent', `batch journal ${paths.journalFile} names a path outside the folder`);
    }
  }
  logger.warn({ journal: paths.journalFile, mode: parsed.mode, entries: parsed.entries.length }, 'rolling batch journal forward');
  let touched: Set<string>;
  try {
    touched = await rollForward(fs, paths, parsed.entries, logger);
    await fsyncAll(fs, touched);
  } catch (err) {
    throw storageErrorFrom(err, `recover ${paths.journalFile}`);
  }
  await dropJournal(fs, paths);
  return { recovered: parsed.entries.length, mode: parsed.mode };
}

async function dropJournal(fs: FsLayer, paths: MaildirPaths): Promise<void> {
  try {
    await fs.unlink(paths.journalFile);
    await fs.fsyncDir(paths.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, `remove ${paths.journalFile}`);
  }
  await fs.unlink(`${paths.journalFile}.next`).catch(() => undefined);
}

/** `{ mode, entries }`; 'torn' when the header is missing or lines are missing; 'corrupt' when complete but unreadable. */
function parseJournal(raw: Buffer): { mode: JournalMode; entries: JournalEntry[] } | 'torn' | 'corrupt' {
  const text = raw.toString('utf8');
  const lines = text.split('\n');
  const last = lines.pop(); // '' when the file ends with a line end; a partial line otherwise
  let header: unknown;
  try {
    header = JSON.parse(lines[0] ?? '');
  } catch {
    return 'torn';
  }
  if (typeof header !== 'object' || header === null) return 'torn';
  const h = header as Record<string, unknown>;
  const count = h.entries;
  const mode = h.mode;
  if (h['maildird-batch'] !== JOURNAL_VERSION || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    return 'corrupt';
  }
  if (mode !== 'trash' && mode !== 'expunge' && mode !== 'undo') return 'corrupt';
  if (lines.length - 1 < count) return 'torn';
  if (lines.length - 1 > count || last !== '') return 'corrupt';
  const entries: JournalEntry[] = [];
  for (const line of lines.slice(1)) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return text.includes('\0') ? 'torn' : 'corrupt';
    }
    if (typeof value !== 'object' || value === null) return 'corrupt';
    const { from, to } = value as Record<string, unknown>;
    if (typeof from !== 'string' || (to !== null && typeof to !== 'string')) return 'corrupt';
    entries.push({ from, to });
  }
  return { mode, entries };
}

/** Finish each entry (see recoverJournal); returns the folders touched. Entries are relative or absolute. */
async function rollForward(
  fs: FsLayer,
  paths: MaildirPaths,
  entries: readonly JournalEntry[],
  logger: Logger,
): Promise<Set<string>> {
  const touched = new Set<string>();
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.join(paths.dir, p));
  for (const entry of entries) {
    const from = abs(entry.from);
    touched.add(path.dirname(from));
    if (entry.to === null) {
      await unlinkChecked(fs, from);
      continue;
    }
    const to = abs(entry.to);
    touched.add(path.dirname(to));
    const [sf, st] = await Promise.all([statOrUndefined(fs, from), statOrUndefined(fs, to)]);
    if (sf !== undefined && st !== undefined) {
      if (sf.dev === st.dev && sf.ino === st.ino) await unlinkChecked(fs, from);
      else logger.error({ from, to }, 'journal: target is another file; the message stays where it was');
    } else if (sf !== undefined) {
      try {
        await moveChecked(fs, from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !to.startsWith(paths.trashDir + path.sep)) throw err;
        // Trash was removed since the batch began: make it again.
        await ensureTrash(fs, paths, path.dirname(to) === paths.trashDir ? 'flat' : 'maildir', undefined);
        await moveChecked(fs, from, to);
      }
    } else if (st === undefined) {
      logger.error({ from, to }, 'journal: message is in neither place (removed by another program?)');
    }
  }
  return touched;
}

async function statOrUndefined(fs: FsLayer, file: string): Promise<{ dev: number; ino: number } | undefined> {
  try {
    const st = await fs.lstat(file);
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
