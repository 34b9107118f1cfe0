/**
 * Maildir++ quota, kept in the `maildirsize` file at the top of the user's
 * folder, as Courier, maildrop, Exim and Dovecot keep it
 * (https://www.courier-mta.org/imap/README.maildirquota.html), so a tree
 * shared with them agrees on usage:
 *
 *     10485760S,1000C        <- limits: bytes (S) and messages (C); a missing part is unlimited
 *     52342 17               <- usage at the last recalculation
 *     3211 1                 <- one line per delivery ...
 *     -3211 -1               <- ... and per removal (negative)
 *
 * Usage is the sum of every line after the first. Lines are appended with
 * O_APPEND (one small write is atomic on a local file system), so concurrent
 * deliveries from any process need no lock. The file is recalculated from
 * the folder (the sizes in `,S=` of the names, else stat) when it is missing
 * or unreadable, when it has grown to 5120 bytes or more, when its limits
 * differ from the configured ones, when a total is negative, and when the
 * user is over quota and the file is either older than 15 minutes or holds
 * delta lines (the usage may be stale; the spec's rule). Maildir++ quota is
 * approximate by design: two deliveries racing may both fit and together
 * exceed the limit a little; the next check refuses.
 *
 * Which folders count: `cur/` and `new/` of the Maildir and of its Maildir++
 * subfolders (`.Drafts/`, ...), except `.Trash/` unless `countTrash` is set:
 * Courier's default (trash quota off), and what makes POP3 deletion in the
 * default `trash` mode free space. A flat folder counts its `*.eml` files.
 */
import { constants } from 'node:fs';
import * as path from 'node:path';
import { StorageError, storageErrorFrom } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { MailUser } from '../store.js';
import type { FsLayer } from './fs.js';
import { parseMaildirName } from './filename.js';
import { maildirPaths } from './layout.js';

/** The spec's size at which the file is rewritten from a scan. */
export const MAILDIRSIZE_MAX_BYTES = 5120;
/** The spec's age after which an over-quota file is distrusted. */
export const MAILDIRSIZE_STALE_MS = 15 * 60 * 1000;

/** 0 means unlimited. */
export interface QuotaLimits {
  readonly bytes: number;
  readonly messages: number;
}

export interface QuotaUsage {
  readonly bytes: number;
  readonly messages: number;
}

export interface QuotaContext {
  readonly fs: FsLayer;
  /** The user's folder (where `maildirsize` lives). */
  readonly dir: string;
  readonly form: 'maildir' | 'flat';
  readonly limits: QuotaLimits;
  /** Count `.Trash/` too (Courier's --enable-trashquota). Default false. */
  readonly countTrash?: boolean;
  /** Injected clock for the 15-minute rule; default Date.now. */
  readonly now?: () => number;
  readonly logger?: Logger | undefined;
  /** Owner for a recalculated file when running as root. */
  readonly owner?: { readonly uid: number; readonly gid: number } | undefined;
}

/** The user's limits: their own (0 = unlimited), else the configured defaults. */
export function quotaLimitsFor(user: MailUser, defaultBytes = 0, defaultMessages = 0): QuotaLimits {
  return {
    bytes: sanitizeLimit(user.quotaBytes ?? defaultBytes),
    messages: sanitizeLimit(user.quotaMessages ?? defaultMessages),
  };
}

function sanitizeLimit(n: number): number {
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

export function isUnlimited(limits: QuotaLimits): boolean {
  return limits.bytes === 0 && limits.messages === 0;
}

/** True when adding `add` to `usage` goes past a (non-zero) limit. */
export function exceeds(usage: QuotaUsage, limits: QuotaLimits, add: QuotaUsage): boolean {
  return (
    (limits.bytes > 0 && usage.bytes + add.bytes > limits.bytes) ||
    (limits.messages > 0 && usage.messages + add.messages > limits.messages)
  );
}

/** The header line for `limits`: `<bytes>S,<count>C`, leaving out unlimited parts. */
export function formatQuotaHeader(limits: QuotaLimits): string {
  const parts: string[] = [];
  if (limits.bytes > 0) parts.push(`${limits.bytes}S`);
  if (limits.messages > 0) parts.push(`${limits.messages}C`);
  return parts.join(',');
}

interface ParsedMaildirsize {
  readonly limits: QuotaLimits;
  readonly usage: QuotaUsage;
  /** Lines after the header. */
  readonly lines: number;
}

/** Parse a maildirsize file; undefined when it is malformed (then it is recalculated). */
export function parseMaildirsize(text: string): ParsedMaildirsize | undefined {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header = lines.shift();
  if (header === undefined) return undefined;
  let bytesLimit = 0;
  let messagesLimit = 0;
  if (header.trim() !== '') {
    for (const part of header.split(',')) {
      const m = /^\s*(\d{1,18})([A-Za-z])\s*$/.exec(part);
      if (m === null) return undefined;
      const value = Number(m[1]);
      // Other letters may be defined by future versions of the spec: ignore them.
      if (m[2] === 'S') bytesLimit = value;
      else if (m[2] === 'C') messagesLimit = value;
    }
  }
  let bytes = 0;
  let messages = 0;
  for (const line of lines) {
    const m = /^\s*(-?\d{1,18})\s+(-?\d{1,18})\s*$/.exec(line);
    if (m === null) return undefined;
    bytes += Number(m[1]);
    messages += Number(m[2]);
  }
  return { limits: { bytes: bytesLimit, messages: messagesLimit }, usage: { bytes, messages }, lines: lines.length };
}

/** Recalculations in flight, per maildirsize path, so concurrent deliveries share one scan. */
const recalculating = new Map<string, Promise<QuotaUsage>>();

/**
 * Current usage of the user's folder, from `maildirsize`, recalculating it
 * when the spec says so. `adding` is what the caller is about to store: it
 * decides whether the user counts as over quota for the staleness rule.
 */
export async function quotaUsage(ctx: QuotaContext, adding: QuotaUsage = { bytes: 0, messages: 0 }): Promise<QuotaUsage> {
  const file = maildirPaths(ctx.dir).maildirsize;
  let raw: Buffer;
  try {
    raw = await ctx.fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      ctx.logger?.warn({ file, err }, 'maildirsize unreadable: recalculating');
    }
    return recalculate(ctx);
  }
  if (raw.length >= MAILDIRSIZE_MAX_BYTES) return recalculate(ctx);
  const parsed = parseMaildirsize(raw.toString('latin1'));
  if (parsed === undefined) {
    ctx.logger?.warn({ file }, 'maildirsize malformed: recalculating');
    return recalculate(ctx);
  }
  if (parsed.limits.bytes !== ctx.limits.bytes || parsed.limits.messages !== ctx.limits.messages) {
    return recalculate(ctx);
  }
  if (parsed.usage.bytes < 0 || parsed.usage.messages < 0) return recalculate(ctx);
  if (exceeds(parsed.usage, ctx.limits, adding)) {
    if (parsed.lines > 1) return recalculate(ctx);
    try {
      const st = await ctx.fs.stat(file);
      if ((ctx.now ?? Date.now)() - st.mtimeMs > MAILDIRSIZE_STALE_MS) return recalculate(ctx);
    } catch {
      return recalculate(ctx);
    }
  }
  return parsed.usage;
}

/**
 * Throw StorageError('quota') when storing `adding` would take the user
 * past a limit. Unlimited users cost nothing (no file is read).
 */
export async function checkQuota(ctx: QuotaContext, adding: QuotaUsage): Promise<void> {
  if (isUnlimited(ctx.limits)) return;
  const usage = await quotaUsage(ctx, adding);
  if (exceeds(usage, ctx.limits, adding)) {
    throw new StorageError(
      'quota',
      `over quota: ${usage.bytes}+${adding.bytes} bytes of ${ctx.limits.bytes || 'unlimited'}, ` +
        `${usage.messages}+${adding.messages} messages of ${ctx.limits.messages || 'unlimited'}`,
    );
  }
}

/**
 * Append a `<bytes> <messages>` line to the user's `maildirsize` (negative
 * for removals: the batch calls this after an expunge, or after moving
 * messages into the uncounted Trash). Does nothing when there is no
 * maildirsize (nobody keeps quota for this folder; it is built when a quota
 * is first checked). Returns whether a line was written. Throws
 * StorageError on I/O errors: callers treat quota bookkeeping as best
 * effort (a wrong file is corrected by the next recalculation).
 */
export async function recordDelta(fs: FsLayer, dir: string, bytes: number, messages: number): Promise<boolean> {
  if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(messages)) {
    throw new StorageError('permanent', `quota delta is not an integer: ${bytes} ${messages}`);
  }
  if (bytes === 0 && messages === 0) return false;
  const file = maildirPaths(dir).maildirsize;
  let handle;
  try {
    // O_NOFOLLOW: a maildirsize planted as a symlink never makes us append
    // to a file outside the root (invariant 4; test/fuzz/abuse.test.ts).
    handle = await fs.open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw storageErrorFrom(err, `open ${file}`);
  }
  try {
    // One write of one short line: O_APPEND makes it atomic against other appenders.
    await handle.write(Buffer.from(`${bytes} ${messages}\n`, 'latin1'));
    return true;
  } catch (err) {
    throw storageErrorFrom(err, `append ${file}`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function recalculate(ctx: QuotaContext): Promise<QuotaUsage> {
  const file = maildirPaths(ctx.dir).maildirsize;
  const running = recalculating.get(file);
  if (running !== undefined) return running;
  const job = rebuild(ctx).finally(() => recalculating.delete(file));
  recalculating.set(file, job);
  return job;
}

let tmpCounter = 0;

/**
 * Scan the folder, write a fresh maildirsize through a temporary file and
 * rename it into place. If the messages of any counted directory changed
 * during the scan, a delivery may have appended its delta to the old file
 * or be counted twice: the new file is removed again (the spec's rule, which
 * it states with directory mtimes; we compare the names, since our own
 * rewrite changes a flat folder's mtime) so the next check recalculates, and
 * the scanned figure is returned.
 */
async function rebuild(ctx: QuotaContext): Promise<QuotaUsage> {
  const paths = maildirPaths(ctx.dir);
  const dirs = await countedDirs(ctx);
  const listings = await Promise.all(dirs.map((dir) => listMessages(ctx, dir)));
  let bytes = 0;
  let messages = 0;
  for (const [i, dir] of dirs.entries()) {
    const counted = await sizeOf(ctx, dir, listings[i] ?? []);
    bytes += counted.bytes;
    messages += counted.messages;
  }
  const usage = { bytes, messages };
  const text = `${formatQuotaHeader(ctx.limits)}\n${bytes} ${messages}\n`;
  tmpCounter += 1;
  const tmpName = `${Date.now()}.P${process.pid}Q${tmpCounter}.maildirsize`;
  const tmp =
    ctx.form === 'maildir' ? path.join(paths.tmp, tmpName) : path.join(ctx.dir, `.${tmpName}.tmp`);
  try {
    await ctx.fs.writeFile(tmp, text, 0o600);
    if (ctx.owner !== undefined) await ctx.fs.chown(tmp, ctx.owner.uid, ctx.owner.gid);
    await ctx.fs.rename(tmp, paths.maildirsize);
  } catch (err) {
    // Usage is known even if the cache cannot be written; the next check tries again.
    ctx.logger?.warn({ file: paths.maildirsize, err }, 'could not write maildirsize');
    await ctx.fs.unlink(tmp).catch(() => undefined);
    return usage;
  }
  const after = await Promise.all(dirs.map((dir) => listMessages(ctx, dir)));
  if (after.some((names, i) => !sameNames(names, listings[i] ?? []))) {
    await ctx.fs.unlink(paths.maildirsize).catch(() => undefined);
  }
  return usage;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((name) => set.has(name));
}

/** The directories whose messages count. */
async function countedDirs(ctx: QuotaContext): Promise<string[]> {
  if (ctx.form === 'flat') return [ctx.dir];
  const paths = maildirPaths(ctx.dir);
  const dirs = [paths.cur, paths.new];
  let entries;
  try {
    entries = await ctx.fs.readdirWithTypes(ctx.dir);
  } catch (err) {
    throw storageErrorFrom(err, `read ${ctx.dir}`);
  }
  for (const entry of entries) {
    const name = entry.name;
    if (!name.startsWith('.') || name === '.' || name === '..' || !entry.isDirectory()) continue;
    if (name === '.Trash' && ctx.countTrash !== true) continue;
    const sub = path.join(ctx.dir, name);
    dirs.push(path.join(sub, 'cur'), path.join(sub, 'new'));
  }
  return dirs;
}

/** Names of the messages in one directory (Maildir names, or a flat folder's `*.eml`). */
async function listMessages(ctx: QuotaContext, dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await ctx.fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw storageErrorFrom(err, `read ${dir}`);
  }
  return ctx.form === 'flat'
    ? names.filter((name) => !name.startsWith('.') && name.endsWith('.eml'))
    : names.filter((name) => parseMaildirName(name) !== undefined);
}

/** Bytes and messages of `names` in `dir`: `,S=` from Maildir names, stat for the rest. */
async function sizeOf(ctx: QuotaContext, dir: string, names: readonly string[]): Promise<QuotaUsage> {
  let bytes = 0;
  let messages = 0;
  const toStat: string[] = [];
  for (const name of names) {
    const size = ctx.form === 'maildir' ? parseMaildirName(name)?.size : undefined;
    if (size === undefined) {
      toStat.push(name);
    } else {
      bytes += size;
      messages += 1;
    }
  }
  for (let i = 0; i < toStat.length; i += 32) {
    const sizes = await Promise.all(
      toStat.slice(i, i + 32).map(async (name) => {
        try {
          const st = await ctx.fs.lstat(path.join(dir, name));
          return st.isFile() ? st.size : undefined;
        } catch {
          return undefined; // vanished meanwhile (moved to cur/, deleted): not counted
        }
      }),
    );
    for (const size of sizes) {
      if (size === undefined) continue;
      bytes += size;
      messages += 1;
    }
  }
  return { bytes, messages };
}
