/**
 * Run the built CLI (`node bin/maildird ...`, which imports dist/; `npm
 * test` builds first) as a real child process: collect its output and exit
 * code, or for `serve`, wait for its listener lines and stop it with a
 * signal. Waits on output and exits, never on time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO, 'bin', 'maildird');

export interface RunOptions {
  readonly cwd?: string;
  /** Added to a clean environment (PATH and HOME only: no MAILDIRD_* from the caller leaks in). */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to stdin, which is then closed; omitted: stdin is closed at once. */
  readonly input?: string;
  /** Shell commands run before the CLI is exec'd, ending in `; ` (`ulimit -n 20000; `). */
  readonly prelude?: string;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * tap's process-info hook adds its loaders to NODE_OPTIONS of every child it
 * sees spawned, and they cannot load the extensionless ESM bin/maildird
 * (ERR_REQUIRE_CYCLE_MODULE). A shell in between drops NODE_OPTIONS, so the
 * CLI runs exactly as a user's shell would run it.
 */
function command(args: readonly string[], prelude = ''): [string, string[]] {
  return ['/bin/sh', ['-c', `${prelude}unset NODE_OPTIONS; exec "$@"`, 'sh', process.execPath, BIN, ...args]];
}

export function cliEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...extra };
}

/** Run `maildird args...` to its end. */
export async function runCli(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = command(args);
  const child = spawn(file, argv, {
    cwd: options.cwd ?? REPO,
    env: cliEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out = collect(child);
  child.stdin?.end(options.input ?? '');
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, ...out.text() };
}

function collect(child: ChildProcess): { text(): { stdout: string; stderr: string } } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  return {
    text: () => ({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }),
  };
}

export interface ListenerLine {
  readonly name: string;
  readonly address: string;
  readonly state: 'listening' | 'not built yet';
}

/** A running `maildird serve`. */
export class ServeProcess {
  readonly child: ChildProcess;
  readonly #stdout: Buffer[] = [];
  readonly #stderr: Buffer[] = [];
  readonly #exit: Promise<RunResult>;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.#stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.#stderr.push(chunk));
    this.#exit = once(child, 'close').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      stdout: this.stdout,
      stderr: this.stderr,
    }));
  }

  /** Spawn `maildird serve args...`. */
  static start(args: readonly string[], options: RunOptions = {}): ServeProcess {
    const [file, argv] = command(['serve', ...args], options.prelude);
    const child = spawn(file, argv, {
      cwd: options.cwd ?? REPO,
      env: cliEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServeProcess(child);
  }

  get stdout(): string {
    return Buffer.concat(this.#stdout).toString('utf8');
  }

  get stderr(): string {
    return Buffer.concat(this.#stderr).toString('utf8');
  }

  /**
   * Wait until serve printed its listener lines (the summary ends with the
   * "Stop with" line) and return them; reject if it exits first.
   */
  async ready(): Promise<ListenerLine[]> {
    const exited = this.#exit.then((r) => {
      throw new Error(`maildird serve exited (${r.code ?? r.signal}) before it was ready: ${r.stderr || r.stdout}`);
    });
    exited.catch(() => {}); // once ready, a later exit is the test's business, not an unhandled rejection
    const printed = new Promise<void>((resolve) => {
      const check = () => {
        if (this.stdout.includes('Stop with Ctrl-C')) {
          this.child.stdout?.off('data', check);
          resolve();
        }
      };
      this.child.stdout?.on('data', check);
      check();
    });
    await Promise.race([printed, exited]);
    return [...this.stdout.matchAll(/^(\w+) (\S+): (listening|not built yet)$/gm)].map((m) => ({
      name: m[1] ?? '',
      address: m[2] ?? '',
      state: m[3] as ListenerLine['state'],
    }));
  }

  /** Send `signal` and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<RunResult> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.#exit;
  }

  /** The exit, without sending anything. */
  exited(): Promise<RunResult> {
    return this.#exit;
  }
}

/** The port of `127.0.0.1:1110` or `[::]:110`. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}
