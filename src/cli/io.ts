/**
 * What a command may touch of the outside world. main() gets the real
 * process's by default; tests hand in their own streams, environment and
 * folder. src/cli is the only code that reads process.env and process.argv
 * (DESIGN "The house").
 */
import type { Readable, Writable } from 'node:stream';

/** stdin as commands use it: a TTY can switch echo off (raw mode). */
export type CliInput = Readable & { readonly isTTY?: boolean; setRawMode?(mode: boolean): unknown };

export interface CliIo {
  readonly stdin: CliInput;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Write `text` and wait until the stream has taken it (so output is not lost when the process exits). */
export function writeOut(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
