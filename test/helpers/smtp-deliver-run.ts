/**
 * Run the built `maildird deliver` (bin/maildird, which imports dist/) as a
 * real child process with bytes on stdin, as an MTA runs it. The same shell
 * in between as test/helpers/cli-run.ts: tap's NODE_OPTIONS loaders cannot
 * load the extensionless bin, and a shell drops them.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BIN, cliEnv, REPO } from './cli-run.js';

export interface DeliverRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `maildird deliver args...` with `input` on stdin, to its end. */
export async function runDeliver(args: readonly string[], input: Buffer | string, env: Readonly<Record<string, string>> = {}): Promise<DeliverRun> {
  const child = spawn('/bin/sh', ['-c', 'unset NODE_OPTIONS; exec "$@"', 'sh', process.execPath, BIN, 'deliver', ...args], {
    cwd: REPO,
    env: cliEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // The agent may exit before reading everything (unknown user): a closed pipe is not the test's failure.
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
}

/** Where bin/maildird lives, for MTAs' command lines. */
export { BIN };
