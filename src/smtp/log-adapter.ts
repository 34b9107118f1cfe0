/**
 * smtp-server's bunyan-style logger calls, onto our pino logger with
 * STYLE.md 8's levels and field names. smtp-server logs the wire at debug
 * (`C:`/`S:`) and every socket error at error; here the wire stays at
 * debug when the `trace` setting is on (as POP3 does, and as the config's
 * `trace` key documents) and is dropped when it is off, connection events
 * go to info, and a client hanging up is not an error.
 * smtp-server already masks AUTH payloads (`/* secured *\/`) before it logs
 * a command line; nothing here adds a secret.
 */
import { format } from 'node:util';
import type { Logger } from '../log/logger.js';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** smtp-server's `tnx` (transaction kind) to our level; unknown ones keep smtp-server's level. */
const WIRE = new Set(['command', 'send', 'data']);

const LEVEL_BY_TNX: Readonly<Record<string, Level>> = {
  message: 'debug',
  connection: 'info',
  close: 'debug',
  closed: 'info',
  listen: 'info',
  starttls: 'debug',
  auth: 'info',
  authfail: 'info',
  autherror: 'warn',
  punycode: 'debug',
  proxy: 'info',
  shell: 'debug',
  kill: 'debug',
};

/** Socket errors that only mean the client went away. */
const QUIET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'SocketError']);

interface Entry {
  tnx?: unknown;
  cid?: unknown;
  host?: unknown;
  user?: unknown;
  err?: unknown;
  [key: string]: unknown;
}

export interface SmtpServerLogger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal(...args: unknown[]): void;
}

/**
 * @param logger the listener's logger (a child that already binds `proto`).
 * @param trace log commands and replies (at debug); otherwise they are dropped.
 */
export function smtpServerLogger(logger: Logger, trace = true): SmtpServerLogger {
  const log =
    (given: Level) =>
    (...args: unknown[]): void => {
      const entry: Entry = typeof args[0] === 'object' && args[0] !== null ? (args.shift() as Entry) : {};
      const [message, ...rest] = args;
      const tnx = typeof entry.tnx === 'string' ? entry.tnx : '';
      if (WIRE.has(tnx) && !trace) return;
      let level: Level = WIRE.has(tnx) ? 'debug' : (LEVEL_BY_TNX[tnx] ?? given);
      const err = entry.err as (Error & { code?: string }) | undefined;
      if (tnx === 'error') level = err?.code !== undefined && QUIET_CODES.has(err.code) ? 'debug' : 'warn';
      if (!logger.isLevelEnabled(level)) return;
      const fields: Record<string, unknown> = {};
      if (entry.cid !== undefined) fields['cid'] = entry.cid;
      if (typeof entry.host === 'string') fields['remote'] = entry.host;
      if (typeof entry.user === 'string' && entry.user !== '') fields['user'] = entry.user;
      if (err !== undefined) fields['err'] = err;
      if (typeof entry['bytes'] === 'number') fields['bytes'] = entry['bytes'];
      logger[level](fields, format(message, ...rest));
    };
  return {
    trace: log('trace'),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    fatal: log('fatal'),
  };
}
