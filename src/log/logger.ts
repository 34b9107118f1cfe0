/**
 * The only module that imports pino. Everyone else takes a `Logger` and makes
 * children: `{ proto, cid, remote }` per connection, `user` after login.
 * Levels (STYLE.md 8): trace = wire traffic, debug = client mistakes and
 * transitions, info = connect/close/login/delivery, warn = recovered
 * anomalies, error = storage failures and surprises.
 */
import { pino, type Logger as PinoLogger, type DestinationStream, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Field paths masked wherever they appear, as a second line of defence behind the protocol redaction. */
const REDACT_PATHS = ['password', 'pass', '*.password', '*.pass', 'secret', '*.secret'];

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Where to write; default stdout (fd 1) through pino's async-safe destination. */
  readonly destination?: DestinationStream;
  readonly name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      name: options.name ?? 'maildird',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '***' },
      base: { pid: process.pid },
    },
    destination,
  );
}

/** A logger that drops everything: the default for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
