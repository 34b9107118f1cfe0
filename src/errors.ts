/**
 * Typed errors. Each front-end maps these to replies in exactly one place
 * (pop3/replies.ts `toPop3Reply`, smtp `toSmtpReply`); nothing else formats
 * an error for a client, so no stack text ever reaches the wire.
 */

/** The closed set of storage failure kinds the front-ends map to replies. */
export type StorageErrorKind =
  | 'not-found' // user folder or message is gone
  | 'in-use' // maildrop locked by another session (POP3 [IN-USE])
  | 'temporary' // I/O error worth retrying (POP3 [SYS/TEMP], SMTP 4.3.0)
  | 'no-space' // ENOSPC / EDQUOT from the file system (SMTP 452 4.3.1)
  | 'permanent' // broken tree, permission denied (POP3 [SYS/PERM]; SMTP defers: 451 4.3.0)
  | 'too-large' // message over a size limit (SMTP 552 5.3.4)
  | 'quota' // user quota exceeded (SMTP 552 5.2.2)
  | 'invalid-name'; // a user name or path that could escape the root

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly kind: StorageErrorKind;
  constructor(kind: StorageErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

export function isStorageError(err: unknown, kind?: StorageErrorKind): err is StorageError {
  return err instanceof StorageError && (kind === undefined || err.kind === kind);
}

/**
 * Map a Node.js system error from a file operation to a StorageError.
 * ENOSPC/EDQUOT become 'no-space'; ENOENT 'not-found'; EACCES/EPERM/EROFS
 * 'permanent' (an operator must act); anything else 'temporary'.
 */
export function storageErrorFrom(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let kind: StorageErrorKind;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      kind = 'no-space';
      break;
    case 'ENOENT':
      kind = 'not-found';
      break;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      kind = 'permanent';
      break;
    default:
      kind = 'temporary';
  }
  return new StorageError(kind, `${what}: ${code ?? (err as Error | undefined)?.message ?? String(err)}`, {
    cause: err,
  });
}

/** RFC 2449 / RFC 3206 extended response codes used by maildird. */
export type Pop3ResponseCode = 'IN-USE' | 'LOGIN-DELAY' | 'SYS/TEMP' | 'SYS/PERM' | 'AUTH' | 'UTF8';

/** An error a POP3 client sees as `-ERR [CODE] text`. */
export class Pop3Error extends Error {
  override readonly name = 'Pop3Error';
  readonly code: Pop3ResponseCode | undefined;
  constructor(text: string, code?: Pop3ResponseCode, options?: { cause?: unknown }) {
    super(text, options);
    this.code = code;
  }
}

/** An error an SMTP client sees as `CODE X.Y.Z text`. */
export class SmtpReplyError extends Error {
  override readonly name = 'SmtpReplyError';
  readonly replyCode: number;
  readonly enhancedCode: string;
  constructor(replyCode: number, enhancedCode: string, text: string, options?: { cause?: unknown }) {
    super(text, options);
    this.replyCode = replyCode;
    this.enhancedCode = enhancedCode;
  }
}

/** A configuration or usage problem: one line for the operator, exit code 78 (EX_CONFIG) unless set. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The config key or flag at fault, when there is one. */
  readonly key: string | undefined;
  readonly exitCode: number;
  constructor(message: string, options?: { key?: string; exitCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.key = options?.key;
    this.exitCode = options?.exitCode ?? 78;
  }
}
