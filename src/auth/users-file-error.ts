/**
 * The one error the users-file code throws: a ConfigError (one line for the
 * operator, a sysexits(3) exit code for the CLI) with a closed `code` a
 * caller can switch on, and the per-line errors when the file is broken.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import type { PasswdLineError } from './passwd-file.js';

export type UsersFileErrorCode =
  | 'unreadable' // missing or unreadable file
  | 'broken-file' // lines that do not parse (see `lines`)
  | 'invalid-name' // a name that could not be a folder
  | 'invalid-field' // a value the format cannot hold
  | 'duplicate-user'
  | 'no-such-user'
  | 'write-failed';

/** sysexits(3) codes, so `maildird user ...` exits the way scripts expect. */
const EXIT_CODES: Readonly<Record<UsersFileErrorCode, number>> = {
  unreadable: 66, // EX_NOINPUT
  'broken-file': 65, // EX_DATAERR
  'invalid-name': 65,
  'invalid-field': 65,
  'duplicate-user': 65,
  'no-such-user': 67, // EX_NOUSER
  'write-failed': 74, // EX_IOERR
};

/** How many bad lines a message names before it says "and N more". */
const LINES_IN_MESSAGE = 5;

export class UsersFileError extends ConfigError {
  readonly code: UsersFileErrorCode;
  readonly lines: readonly PasswdLineError[];
  constructor(code: UsersFileErrorCode, message: string, options: { lines?: readonly PasswdLineError[]; cause?: unknown } = {}) {
    super(message, { key: 'users', exitCode: EXIT_CODES[code], cause: options.cause });
    this.code = code;
    this.lines = options.lines ?? [];
  }
}

/** One line naming the first few bad lines of a file. */
export function describeLineErrors(path: string, lines: readonly PasswdLineError[]): string {
  const shown = lines.slice(0, LINES_IN_MESSAGE).map((e) => `line ${e.line}: ${e.reason}`);
  const more = lines.length > LINES_IN_MESSAGE ? `; and ${lines.length - LINES_IN_MESSAGE} more` : '';
  return `${path}: ${lines.length} bad line${lines.length === 1 ? '' : 's'}: ${shown.join('; ')}${more}`;
}

/** The users file's bytes; a missing or unreadable file is UsersFileError('unreadable'). */
export async function readUsersFileBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsersFileError('unreadable', `cannot read the users file ${path}: ${code}`, { cause: err });
  }
}
