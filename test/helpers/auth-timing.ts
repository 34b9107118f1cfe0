/**
 * Login timing against a `maildird serve` child (issue 6, `npm run stress`):
 * how long PASS takes to be answered for a known user with a wrong
 * password and for an unknown user, over POP3. Each attempt comes from its
 * own loopback address and names its own user, so the failed-login
 * throttle (per address and per user) never adds a delay: what is left is
 * the server's own work. Known and unknown attempts alternate, so drift in
 * the machine's load hits both alike.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword } from '../../src/auth/password.js';
import { ServeProcess, portOf } from './cli-run.js';
import { WireClient } from './crash-harness.js';

export interface TimingOptions {
  readonly dir: string;
  /** Scheme of every user's stored password (`SHA512-CRYPT`, `ARGON2ID`, ...). */
  readonly scheme: string;
  readonly attempts: number;
}

export interface Percentiles {
  n: number;
  p10: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

export interface TimingFigures {
  scheme: string;
  /** Milliseconds from PASS sent to its reply. */
  knownWrongPassword: Percentiles;
  unknownUser: Percentiles;
  /** unknown p50 / known p50. */
  medianRatio: number;
  replies: { known: string[]; unknown: string[] };
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    n: sorted.length,
    p10: round(at(0.1)),
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    mean: round(sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length)),
  };
}

async function attempt(port: number, user: string, localAddress: string): Promise<{ ms: number; reply: string }> {
  const c = await WireClient.open(port, localAddress);
  try {
    await c.line();
    c.write(`USER ${user}\r\n`);
    await c.line();
    const started = process.hrtime.bigint();
    c.write('PASS wrong-password\r\n');
    const reply = await c.line();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    c.write('QUIT\r\n');
    return { ms, reply };
  } finally {
    c.close();
  }
}

export async function measureLoginTiming(o: TimingOptions): Promise<TimingFigures> {
  const stored = await hashPassword('the-right-password', o.scheme);
  const users = Array.from({ length: o.attempts }, (_, i) => `user${i}:${stored}\n`);
  mkdirSync(join(o.dir, 'mail'), { recursive: true });
  writeFileSync(join(o.dir, 'passwd'), users.join(''));
  writeFileSync(
    join(o.dir, 'maildird.json'),
    JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: false, http: false }, logLevel: 'warn', hostname: 'timing.test' }),
  );
  const serve = ServeProcess.start([], { cwd: o.dir });
  const known: number[] = [];
  const unknown: number[] = [];
  const replies = { known: [] as string[], unknown: [] as string[] };
  try {
    const lines = await serve.ready();
    const port = portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0');
    // A few untimed attempts first: the first hash check pays for compiling the WebAssembly.
    for (let i = 0; i < 3; i++) await attempt(port, `warmup${i}`, `127.6.0.${1 + i}`);
    for (let i = 0; i < o.attempts; i++) {
      const address = (k: number) => `127.5.${Math.floor(k / 250)}.${1 + (k % 250)}`;
      const k = await attempt(port, `user${i}`, address(2 * i));
      const u = await attempt(port, `nobody${i}`, address(2 * i + 1));
      known.push(k.ms);
      unknown.push(u.ms);
      if (!replies.known.includes(k.reply)) replies.known.push(k.reply);
      if (!replies.unknown.includes(u.reply)) replies.unknown.push(u.reply);
    }
  } finally {
    await serve.stop('SIGKILL');
  }
  const knownWrongPassword = percentiles(known);
  const unknownUser = percentiles(unknown);
  return {
    scheme: o.scheme,
    knownWrongPassword,
    unknownUser,
    medianRatio: Math.round((unknownUser.p50 / Math.max(0.001, knownWrongPassword.p50)) * 100) / 100,
    replies,
  };
}
