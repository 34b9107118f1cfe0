/**
 * The benchmark's Maildir tree, generated once per run: one folder per user,
 * every message in `cur/` already flagged Seen (`:2,S`), so neither server
 * renames anything and every run reads the same tree. Names carry `,S=` and
 * `,W=` as Dovecot's own deliveries do, so neither server opens a file to
 * list it. Stored form: LF line ends (DESIGN "Stored bytes"); about one
 * line per 20 KB message starts with a dot, so RETR's dot-stuffing is
 * exercised and counted (real mail has few such lines).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MaildropSpec {
  readonly user: string;
  readonly count: number;
  /** Approximate stored size of each message. */
  readonly messageBytes: number;
}

export interface MaildropInfo extends MaildropSpec {
  readonly dir: string;
  /** Sum of stored sizes (S=). */
  readonly storedOctets: number;
  /** Sum of wire sizes (W=): what STAT reports. */
  readonly wireOctets: number;
  /** Octets every RETR body sends over the whole maildrop: wire sizes plus dot-stuffing. */
  readonly retrOctets: number;
}

const POOL_LINES = 4096;
const BASE_SECONDS = 1_700_000_000;

/** Deterministic text lines of 30-76 printable characters; one in 257 starts with a dot (about one per 20 KB message). */
function linePool(): Buffer[] {
  const words = (
    'the of and to in is was for on that with as by at from his her it an were are which this be or ' +
    'has had not but mail server maildir message delivery retrieve benchmark throughput latency client ' +
    'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore'
  ).split(' ');
  let seed = 0x2545f491;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return (seed >>> 8) % n;
  };
  const pool: Buffer[] = [];
  for (let i = 0; i < POOL_LINES; i++) {
    const target = 30 + next(47);
    let line = i % 257 === 11 ? '.' : '';
    while (line.length < target) line += (line.length > 1 ? ' ' : '') + (words[next(words.length)] ?? 'x');
    if (i % 53 === 7) line += '.';
    pool.push(Buffer.from(`${line.slice(0, 76)}\n`, 'latin1'));
  }
  return pool;
}

let pool: Buffer[] | undefined;

/** Message `index` of `user` in stored form, with its line and stuffed-line counts. */
export function storedMessage(user: string, index: number, targetBytes: number): { bytes: Buffer; lines: number; dots: number } {
  pool ??= linePool();
  const header = Buffer.from(
    `Return-Path: <sender@example.org>\n` +
      `Delivered-To: ${user}@bench.example\n` +
      `From: Bench Sender <sender@example.org>\n` +
      `To: ${user} <${user}@bench.example>\n` +
      `Subject: benchmark message ${index + 1} for ${user}\n` +
      `Date: Tue, 14 Nov 2023 22:13:20 +0000\n` +
      `Message-ID: <${index + 1}.${user}@bench.example>\n` +
      `MIME-Version: 1.0\n` +
      `Content-Type: text/plain; charset=us-ascii\n\n`,
    'latin1',
  );
  // Sizes vary by up to +-10 % around the target, deterministically.
  const size = Math.max(header.length + 1, Math.round(targetBytes * (0.9 + ((index * 7_919) % 201) / 1000)));
  const parts: Buffer[] = [header];
  let length = header.length;
  let lines = header.toString('latin1').split('\n').length - 1;
  let dots = 0;
  for (let k = (index * 131) % POOL_LINES; length < size; k = (k + 1) % POOL_LINES) {
    const line = pool[k] as Buffer;
    parts.push(line);
    length += line.length;
    lines++;
    if (line[0] === 0x2e) dots++;
  }
  return { bytes: Buffer.concat(parts, length), lines, dots };
}

/** RETR's body for a stored message: LF to CRLF, dot-stuffed (RFC 1939 section 3), no terminator. */
export function wireForm(stored: Buffer): Buffer {
  const text = stored.toString('latin1').replace(/\n/g, '\r\n').replace(/^\./gm, '..');
  return Buffer.from(text, 'latin1');
}

/** Writes every maildrop under `root` (synchronously: small files, one at a time, is fastest here). */
export function buildTree(root: string, specs: readonly MaildropSpec[]): Map<string, MaildropInfo> {
  const result = new Map<string, MaildropInfo>();
  for (const spec of specs) {
    const dir = join(root, spec.user);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    let storedOctets = 0;
    let wireOctets = 0;
    let retrOctets = 0;
    for (let i = 0; i < spec.count; i++) {
      const { bytes, lines, dots } = storedMessage(spec.user, i, spec.messageBytes);
      const wire = bytes.length + lines;
      const name = `${BASE_SECONDS + i}.M${(i * 7_919) % 1_000_000}P4242Q${i + 1}.bench.example,S=${bytes.length},W=${wire}:2,S`;
      writeFileSync(join(dir, 'cur', name), bytes, { flag: 'wx', mode: 0o600 });
      storedOctets += bytes.length;
      wireOctets += wire;
      retrOctets += wire + dots;
    }
    result.set(spec.user, { ...spec, dir, storedOctets, wireOctets, retrOctets });
  }
  return result;
}
