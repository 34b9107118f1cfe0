/**
 * The C load client (test/bench/pop3-load.c) and the null responder
 * (test/bench/null-pop3.c): compiled with `cc -O2` into the run's temporary
 * folder, run as child processes with a time bound, their JSON read back.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startProcess, stopProcess } from './processes.js';

export interface Tools {
  readonly client: string;
  readonly nullServer: string;
}

export function compileTools(sourceDir: string, outDir: string): Tools {
  const build = (name: string): string => {
    const out = join(outDir, name);
    const result = spawnSync('cc', ['-O2', '-pthread', '-o', out, join(sourceDir, `${name}.c`)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (result.status !== 0) throw new Error(`cc ${name}.c failed: ${result.stderr || result.error?.message || ''}`);
    return out;
  };
  return { client: build('pop3-load'), nullServer: build('null-pop3') };
}

export interface DownloadResult {
  readonly mode: 'download';
  readonly clients: number;
  readonly depth: number;
  readonly messages: number;
  readonly octets: number;
  readonly wallMs: number;
  readonly connectMs: number[];
  readonly cpuUserMs: number;
  readonly cpuSysMs: number;
}

export interface StatResult {
  readonly mode: 'stat';
  readonly messages: number;
  readonly statMs: number[];
  readonly cpuUserMs: number;
  readonly cpuSysMs: number;
}

export interface ConnectResult {
  readonly mode: 'connect';
  readonly connectMs: number[];
  readonly cpuUserMs: number;
  readonly cpuSysMs: number;
}

/** Runs the client to completion (killed by PID after `timeoutMs`) and parses its one JSON line. */
export async function runClient<T>(tools: Tools, args: readonly string[], timeoutMs = 600_000): Promise<T> {
  const child = startProcess(tools.client, args, ['ignore', 'pipe', 'pipe']);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    void stopProcess(child, 1_000);
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  if (isTimedOut) throw new Error(`pop3-load ${args.join(' ').slice(0, 80)}: timed out after ${timeoutMs} ms`);
  if (code !== 0) throw new Error(`pop3-load ${args.slice(0, 6).join(' ')}: exit ${String(code)}: ${stderr.trim()}`);
  return JSON.parse(stdout) as T;
}

/** Starts the null responder; resolves with its port once it listens. */
export async function startNullServer(
  tools: Tools,
  messageFile: string,
  defaultCount: number,
  counts: Readonly<Record<string, number>>,
): Promise<{ child: ChildProcess; port: number }> {
  const args = ['-f', messageFile, '-d', String(defaultCount)];
  for (const [user, count] of Object.entries(counts)) args.push('-m', `${user}=${count}`);
  const child = startProcess(tools.nullServer, args, ['ignore', 'pipe', 'inherit']);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const timer = setTimeout(() => void stopProcess(child, 1_000), 10_000);
  try {
    for await (const line of lines) {
      const { port } = JSON.parse(line) as { port: number };
      return { child, port };
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error('null-pop3 exited without a port');
}
