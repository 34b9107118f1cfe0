/**
 * Turn any error that reaches the top of a command into one line for the
 * operator and an exit code. Never a stack trace: the cause chain stays in
 * the error object for a debugger, the operator gets what to fix.
 */
import { ConfigError, StorageError } from '../errors.js';
import { EXIT } from './exit-codes.js';

export interface Failure {
  readonly message: string;
  readonly exitCode: number;
}

/** A usage mistake yargs found (unknown flag, missing argument). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function describeFailure(err: unknown): Failure {
  if (err instanceof UsageError) return { message: oneLine(err.message), exitCode: EXIT.usage };
  if (err instanceof ConfigError) return { message: oneLine(err.message), exitCode: err.exitCode };
  if (err instanceof StorageError) {
    const exitCode =
      err.kind === 'not-found'
        ? EXIT.noInput
        : err.kind === 'invalid-name'
          ? EXIT.dataError
          : err.kind === 'in-use' || err.kind === 'temporary'
            ? EXIT.tempFail
            : EXIT.ioError;
    return { message: oneLine(err.message), exitCode };
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    const isInput = code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'ENOTDIR';
    return { message: oneLine((err as Error).message), exitCode: isInput ? EXIT.noInput : EXIT.ioError };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { message: `unexpected error: ${oneLine(message)}`, exitCode: EXIT.software };
}

function oneLine(text: string): string {
  const line = text.split(/\r?\n/).find((part) => part.trim() !== '') ?? 'failed';
  return line.trim();
}
