/**
 * Build real Maildir and flat trees for the Maildir adapter tests, and read
 * the message fixture corpus (fixtures/messages/*.eml).
 */
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { wireSize } from '../../src/storage/wire.js';
import type { Logger, LogLevel } from '../../src/log/logger.js';
import { captureLog } from './log-capture.js';

export const FIXTURES_DIR = fileURLToPath(new URL('../../fixtures/', import.meta.url));

export interface FixtureMessage {
  /** File name in fixtures/messages, e.g. `lf-plain.eml`. */
  readonly file: string;
  /** Stored bytes. */
  readonly bytes: Buffer;
}

/** Every message fixture, in name order. */
export function fixtureMessages(): FixtureMessage[] {
  const dir = path.join(FIXTURES_DIR, 'messages');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((file) => ({ file, bytes: readFileSync(path.join(dir, file)) }));
}

export interface TreeFile {
  readonly content: string | Buffer;
  /** mtime in seconds since the epoch. */
  readonly mtime?: number;
}

export type TreeFiles = Readonly<Record<string, string | Buffer | TreeFile>>;

/** Write `files` into `dir` (created), setting mtimes where given. */
export function writeFiles(dir: string, files: TreeFiles): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [name, spec] of Object.entries(files)) {
    const file = typeof spec === 'string' || Buffer.isBuffer(spec) ? { content: spec } : spec;
    const p = path.join(dir, name);
    writeFileSync(p, file.content, { mode: 0o600 });
    if (file.mtime !== undefined) utimesSync(p, file.mtime, file.mtime);
  }
}

/** A Maildir at `dir` with cur/, new/ and tmp/ holding `files`. */
export function makeMaildir(
  dir: string,
  files: { readonly cur?: TreeFiles; readonly new?: TreeFiles; readonly tmp?: TreeFiles } = {},
): string {
  for (const sub of ['cur', 'new', 'tmp'] as const) writeFiles(path.join(dir, sub), files[sub] ?? {});
  return dir;
}

/** A name carrying `,S=` and `,W=` for `bytes`, as maildird and Dovecot write them. */
export function sizedName(unique: string, bytes: Buffer): string {
  return `${unique},S=${bytes.length},W=${wireSize(bytes)}`;
}

/** Everything a stream gives, as one Buffer. */
export async function readAll(stream: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** The wire form as DESIGN defines it, computed independently of src/storage/wire.ts. */
export function referenceWire(stored: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < stored.length; i++) {
    const b = stored[i] as number;
    if (b === 0x0a && (i === 0 || stored[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(b);
  }
  if (stored.length > 0 && stored[stored.length - 1] !== 0x0a) out.push(0x0d, 0x0a);
  return Buffer.from(out);
}

/** A real pino logger (through src/log) whose records land in `records`, parsed. */
export function captureLogger(level: LogLevel = 'debug'): { logger: Logger; records: Record<string, unknown>[] } {
  const { logger, lines } = captureLog(level);
  return { logger, records: lines };
}

/**
 * DESIGN "Order" for names maildird writes (`<seconds>.M<usec>P...`),
 * computed independently of src/storage/maildir/scan.ts: seconds, then
 * microseconds, then name.
 */
export function byDeliveryTime(a: string, b: string): number {
  const key = (n: string) => {
    const m = /^(\d+)\.M(\d+)/.exec(n);
    return m === null ? [Number.MAX_SAFE_INTEGER, 0] : [Number(m[1]), Number(m[2])];
  };
  const [as, au] = key(a);
  const [bs, bu] = key(b);
  return (as ?? 0) - (bs ?? 0) || (au ?? 0) - (bu ?? 0) || (a < b ? -1 : a > b ? 1 : 0);
}
