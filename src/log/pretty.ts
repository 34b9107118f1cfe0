/**
 * Human-readable log lines for a terminal (config `logFormat`: `auto` is
 * this on a TTY, JSON elsewhere), in the spirit of pino-pretty without its
 * dependencies: pino still writes its JSON line, and this destination turns
 * each one into
 *
 *     14:03:07.412 INFO  pop3 #c1 login user=alice mechanism=USER
 *
 * time, level (coloured when `colors`), the connection's `proto` and `cid`,
 * the message, then the other fields as key=value (strings quoted only when
 * they need it, objects as JSON; an error's message inline and its stack on
 * indented lines below). `pid`, `name`, `hostname` and the line's
 * own `time`/`level`/`msg` are not repeated. A line that is not JSON is
 * passed through as it is: nothing is ever lost for a formatting problem.
 */
import type { Writable } from 'node:stream';

const LEVELS: Readonly<Record<number, { readonly name: string; readonly color: string }>> = {
  10: { name: 'TRACE', color: '\u001b[90m' },
  20: { name: 'DEBUG', color: '\u001b[36m' },
  30: { name: 'INFO ', color: '\u001b[32m' },
  40: { name: 'WARN ', color: '\u001b[33m' },
  50: { name: 'ERROR', color: '\u001b[31m' },
  60: { name: 'FATAL', color: '\u001b[35m' },
};
const RESET = '\u001b[0m';
const DIM = '\u001b[2m';
/** Fields shown in fixed places or not at all. */
const PLACED = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'name', 'proto', 'cid', 'v']);

export interface PrettyOptions {
  readonly colors: boolean;
}

/** A pino destination (anything with `write(line)`) that writes pretty lines to `out`. */
export class PrettyDestination {
  readonly #out: Writable;
  readonly #colors: boolean;

  constructor(out: Writable, options: PrettyOptions) {
    this.#out = out;
    this.#colors = options.colors;
  }

  write(chunk: string): boolean {
    let out = '';
    for (const line of chunk.split('\n')) {
      if (line === '') continue;
      out += `${formatLine(line, this.#colors)}\n`;
    }
    return this.#out.write(out);
  }
}

/** One pino JSON line as a pretty line (without its line end). */
export function formatLine(line: string, colors: boolean): string {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return line;
    entry = parsed as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = LEVELS[typeof entry['level'] === 'number' ? entry['level'] : 30] ?? { name: String(entry['level']), color: '' };
  const time = typeof entry['time'] === 'number' ? clock(entry['time']) : '';
  const where = [entry['proto'], entry['cid'] === undefined ? undefined : `#${String(entry['cid'])}`]
    .filter((v) => v !== undefined)
    .join(' ');
  let stack = '';
  const fields = Object.entries(entry)
    .filter(([key]) => !PLACED.has(key))
    .map(([key, value]) => {
      // pino's serialised Error: its message inline, its stack on the lines below.
      if (key === 'err' && value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string') {
        const err = value as { message: string; stack?: unknown };
        if (typeof err.stack === 'string' && err.stack !== '') stack = `\n    ${err.stack.split('\n').join('\n    ')}`;
        return `err=${show(err.message)}`;
      }
      return `${key}=${show(value)}`;
    })
    .join(' ');
  const paint = (code: string, text: string) => (colors && code !== '' ? `${code}${text}${RESET}` : text);
  return [paint(DIM, time), paint(level.color, level.name), where === '' ? undefined : paint(DIM, where), String(entry['msg'] ?? ''), fields]
    .filter((part) => part !== undefined && part !== '')
    .join(' ') + stack;
}

/** Local wall-clock time of day with milliseconds. */
function clock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function show(value: unknown): string {
  if (typeof value === 'string') return /^[\x21-\x7e]+$/.test(value) && !value.includes('"') ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value);
}
