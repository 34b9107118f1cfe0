/**
 * Support for the lock and journal tests: child processes that speak JSON
 * lines (test/helpers/lock-child.mjs, journal-child.mjs), a check that the
 * dist/ they import is built from the current sources, a logger that keeps
 * what it logs, and a seeded random generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../src/log/logger.js';
import { captureLog } from './log-capture.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The child scripts run the built code. `npm test` builds first; a stale
 * dist/ would test old code, so say so instead of failing obscurely.
 */
export function assertDistFresh(...modules: string[]): string | undefined {
  for (const m of modules) {
    const src = join(repoRoot, 'src', `${m}.ts`);
    const out = join(repoRoot, 'dist', `${m}.js`);
    let built: number;
    try {
      built = statSync(out).mtimeMs;
    } catch {
      return `dist/${m}.js is missing: run \`npm run build\` (npm test builds first)`;
    }
    if (statSync(src).mtimeMs > built) return `dist/${m}.js is older than src/${m}.ts: run \`npm run build\``;
  }
  return undefined;
}

export interface JsonChild {
  readonly process: ChildProcess;
  readonly pid: number;
  /** The next JSON line the child writes; rejects if it exits first. */
  next(): Promise<Record<string, unknown>>;
  send(line: string): void;
  /** Resolves when the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnJsonChild(script: string, args: readonly string[], env: Record<string, string> = {}): JsonChild {
  const child = spawn(process.execPath, [join(repoRoot, 'test', 'helpers', script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const queue: Record<string, unknown>[] = [];
  const waiters: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  let stderr = '';
  let isDone = false;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdin?.on('error', () => undefined); // the child may be killed while we write
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {
      value = { event: 'noise', line };
    }
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter.resolve(value);
    else queue.push(value);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.on('close', (code, signal) => {
      isDone = true;
      for (const w of waiters.splice(0)) w.reject(new Error(`child exited (${code ?? signal}) before a line; stderr: ${stderr}`));
      resolveExit({ code, signal });
    });
  });
  return {
    process: child,
    pid: child.pid ?? -1,
    next() {
      const value = queue.shift();
      if (value !== undefined) return Promise.resolve(value);
      if (isDone) return Promise.reject(new Error(`child exited before a line; stderr: ${stderr}`));
      return new Promise((resolveLine, reject) => waiters.push({ resolve: resolveLine, reject }));
    },
    send(line) {
      child.stdin?.write(`${line}\n`);
    },
    exited,
  };
}

export interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
  /** Messages logged at `level` (pino numbers: 40 warn, 50 error). */
  at(level: number): string[];
}

export function captureLogger(): CapturedLogger {
  const { logger, lines } = captureLog('debug');
  return {
    logger,
    lines,
    at: (level) => lines.filter((l) => l.level === level).map((l) => String(l.msg)),
  };
}

/** A small seeded generator (mulberry32), so random test schedules can be replayed. */
export { prng as seededRandom } from '../fuzz/support/seed.js';
