/**
 * POP3 reply lines, and the one place where errors become replies
 * (STYLE.md 7). Response codes are RFC 2449 section 8 (`[IN-USE]`,
 * `[LOGIN-DELAY]`), RFC 3206 (`[SYS/TEMP]`, `[SYS/PERM]`, `[AUTH]`) and
 * RFC 6856 section 5 (`[UTF8]`).
 */
import { Pop3Error, StorageError, type Pop3ResponseCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { assertNever } from './state.js';

export function okLine(text?: string): string {
  return text === undefined || text === '' ? '+OK\r\n' : `+OK ${text}\r\n`;
}

export function errLine(text: string, code?: Pop3ResponseCode): string {
  return code === undefined ? `-ERR ${text}\r\n` : `-ERR [${code}] ${text}\r\n`;
}

/** What an unexpected failure tells the client: nothing about internals (Dovecot's wording). */
export const INTERNAL_ERROR_TEXT = 'Internal error occurred. Refer to server log for more information.';

/**
 * Map any error from a command to its reply line. StorageError kinds get
 * RFC 3206 codes; a Pop3Error carries its own text and code; anything else
 * is a bug or a surprise: logged in full here, and the client sees a
 * generic `[SYS/TEMP]` line.
 */
export function toPop3Reply(err: unknown, log: Logger): string {
  if (err instanceof Pop3Error) return errLine(err.message, err.code);
  if (err instanceof StorageError) {
    switch (err.kind) {
      case 'in-use':
        return errLine('Maildrop is locked by another session', 'IN-USE');
      case 'not-found':
        log.warn({ err }, 'message or maildrop vanished');
        return errLine('Message is no longer available (removed by another program)', 'SYS/PERM');
      case 'temporary':
      case 'no-space':
        log.error({ err }, 'storage failure');
        return errLine('Temporary storage failure, try again later', 'SYS/TEMP');
      case 'permanent':
      case 'invalid-name':
      case 'too-large':
      case 'quota':
        log.error({ err }, 'storage failure');
        return errLine('Maildrop is not available, contact the administrator', 'SYS/PERM');
      default:
        return assertNever(err.kind);
    }
  }
  log.error({ err }, 'unexpected error in a POP3 command');
  return errLine(INTERNAL_ERROR_TEXT, 'SYS/TEMP');
}
