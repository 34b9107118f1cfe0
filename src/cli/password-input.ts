/**
 * Reading a new password for `maildird user add|passwd`: on a terminal,
 * prompt twice with echo off (raw mode, so nothing typed is ever shown) and
 * compare; from a pipe or file, read exactly one line (scripts:
 * `echo "$pw" | maildird user add alice`), leaving the rest of stdin unread.
 */
import type { Writable } from 'node:stream';
import { ConfigError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import type { CliInput } from './io.js';

/** Longer input is not a password but a mistake (a file piped in by accident). */
const MAX_PASSWORD_BYTES = 4096;

const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const CTRL_U = '\u0015';
const BACKSPACE = '\u0008';
const DELETE = '\u007f';

export async function readNewPassword(input: CliInput, prompts: Writable): Promise<string> {
  let password: string;
  if (input.isTTY === true && typeof input.setRawMode === 'function') {
    const reader = new SecretReader(input, prompts);
    try {
      password = await reader.read('New password: ');
      const again = await reader.read('Repeat new password: ');
      if (again !== password) throw new ConfigError('the passwords do not match', { exitCode: EXIT.dataError });
    } finally {
      reader.close();
    }
  } else {
    const line = await readLine(input);
    if (line === undefined) throw new ConfigError('no password on stdin (expected one line)', { exitCode: EXIT.noInput });
    password = line;
  }
  if (password.length === 0) throw new ConfigError('an empty password is not allowed', { exitCode: EXIT.dataError });
  return password;
}

/**
 * Read one line (up to LF; a CR before it is dropped) and push back anything
 * after it. undefined at end of input with nothing read.
 */
export function readLine(input: CliInput): Promise<string | undefined> {
  if (input.readableEnded) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: () => void) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      result();
    };
    const text = () => Buffer.concat(chunks).toString('utf8').replace(/\r$/, '');
    const onData = (chunk: Buffer | string) => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const lf = buffer.indexOf(0x0a);
      chunks.push(lf < 0 ? buffer : buffer.subarray(0, lf));
      size += lf < 0 ? buffer.length : lf;
      if (size > MAX_PASSWORD_BYTES) {
        finish(() => reject(new ConfigError(`the password line is longer than ${MAX_PASSWORD_BYTES} bytes`, { exitCode: EXIT.dataError })));
      } else if (lf >= 0) {
        const rest = buffer.subarray(lf + 1);
        finish(() => {
          if (rest.length > 0) input.unshift(rest);
          resolve(text());
        });
      }
    };
    const onEnd = () => finish(() => resolve(chunks.length === 0 ? undefined : text()));
    const onError = (err: Error) => finish(() => reject(err));
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

/**
 * Line input from a terminal in raw mode: the terminal echoes nothing, and
 * this echoes nothing either. Keys typed ahead of a prompt are kept for it.
 */
class SecretReader {
  readonly #input: CliInput;
  readonly #output: Writable;
  #pending = '';

  constructor(input: CliInput, output: Writable) {
    this.#input = input;
    this.#output = output;
    input.setRawMode?.(true);
  }

  read(prompt: string): Promise<string> {
    this.#output.write(prompt);
    return new Promise((resolve, reject) => {
      let typed = '';
      const done = (result: () => void) => {
        this.#input.off('data', onData);
        this.#input.off('end', onEnd);
        this.#input.off('error', onError);
        this.#input.pause();
        this.#output.write('\n');
        result();
      };
      // Returns true once the line is complete (or cancelled).
      const consume = (): boolean => {
        while (this.#pending.length > 0) {
          const char = String.fromCodePoint(this.#pending.codePointAt(0) ?? 0);
          this.#pending = this.#pending.slice(char.length);
          if (char === '\r' || char === '\n' || char === CTRL_D) {
            done(() => resolve(typed));
            return true;
          }
          if (char === CTRL_C) {
            done(() => reject(new ConfigError('cancelled', { exitCode: EXIT.forcedShutdown })));
            return true;
          }
          if (char === BACKSPACE || char === DELETE) typed = [...typed].slice(0, -1).join('');
          else if (char === CTRL_U) typed = '';
          else if (char >= ' ') typed += char;
          if (Buffer.byteLength(typed) > MAX_PASSWORD_BYTES) {
            done(() => reject(new ConfigError(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`, { exitCode: EXIT.dataError })));
            return true;
          }
        }
        return false;
      };
      const onData = (chunk: Buffer | string) => {
        this.#pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
        consume();
      };
      const onEnd = () => done(() => reject(new ConfigError('no password typed', { exitCode: EXIT.noInput })));
      const onError = (err: Error) => done(() => reject(err));
      if (consume()) return;
      this.#input.on('data', onData);
      this.#input.once('end', onEnd);
      this.#input.once('error', onError);
      this.#input.resume();
    });
  }

  close(): void {
    this.#input.setRawMode?.(false);
    this.#input.pause();
  }
}
