/**
 * The pre-delivery filter (config `filter.command`): an outside program
 * (`spamc`, `rspamc`, a script) that sees each inbound message before the
 * store does and decides by its exit code, as sendmail's and Postfix's
 * pipe conventions do (sysexits.h):
 *
 *   0   accept; stdout holds header lines to add (`X-Spam-Status: No`), or nothing
 *   77  EX_NOPERM: reject, 550 5.7.1, the first stdout line as the reply text
 *   75  EX_TEMPFAIL: defer, 451 4.7.1, the first stdout line as the reply text
 *
 * Anything else defers with 451 4.3.0: another exit code (a script's
 * `exit 1` is a bug, not a verdict), a signal, a command that is missing
 * (the shell's 127), stdout over its cap, header lines that are not header
 * lines, or no answer within the timeout (the filter's process group is
 * killed). A broken filter therefore never loses a message and never lets
 * one through unfiltered: the sender keeps it and retries (RFC 5321
 * 4.2.5).
 *
 * The command runs with `/bin/sh -c`, its stdin the message as it will be
 * stored for the first recipient, minus the per-recipient Received line's
 * `for` clause: `Return-Path:`, our `Received:`, then the message as
 * received. The environment says who sent it to whom (MAILDIRD_SENDER,
 * MAILDIRD_RECIPIENTS space-separated, MAILDIRD_CLIENT_ADDRESS,
 * MAILDIRD_HELO, MAILDIRD_QUEUE_ID) on top of the environment the server
 * passes (serve: its own).
 *
 * Why the message is held in memory here, against STYLE.md 4: the store
 * may see no byte before the verdict, so the message must wait somewhere,
 * and only the store may write files (DESIGN "The house"). It is bounded by
 * limits.maxMessageBytes, and only held when a filter is configured.
 */
import { spawn } from 'node:child_process';
import { SmtpReplyError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { realTimers, type Timers } from '../protocol/timers.js';
import { traceHeaders, type TraceInfo } from './received.js';

export const FILTER_EXIT = Object.freeze({ accept: 0, reject: 77, defer: 75 });

export interface FilterOptions {
  /** Run with `/bin/sh -c`. */
  readonly command: string;
  readonly timeoutMs: number;
  /** Most stdout the filter may write (headers or a reply text); more defers. Default 64 KiB. */
  readonly maxOutputBytes?: number | undefined;
  readonly timers?: Timers | undefined;
  readonly logger: Logger;
  /** The environment the command starts from (the MAILDIRD_* envelope variables are added); default empty. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

export interface FilterEnvelope {
  readonly queueId: string;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly remoteAddress: string | undefined;
  readonly helo: string | undefined;
}

export type FilterVerdict =
  /** `headers`: CRLF-ended header lines to put before the message ('' for none). */
  | { readonly action: 'accept'; readonly headers: string }
  | { readonly action: 'reject'; readonly reply: SmtpReplyError }
  | { readonly action: 'defer'; readonly reply: SmtpReplyError };

export const DEFAULT_MAX_FILTER_OUTPUT = 64 * 1024;
const STDERR_KEPT = 2048;
const REPLY_TEXT_MAX = 200;
/** A header field: a name of printable characters but colon, then a colon (RFC 5322 2.2). */
const HEADER_START = /^[\x21-\x39\x3b-\x7e]+:/;

/** The filter as a server is configured with it (its logger and timers are the server's). */
export interface FilterSettings {
  readonly command: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes?: number | undefined;
  /** The environment the command starts from (serve passes its own); default empty. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

/**
 * Read the whole message, run the filter, and give back what the store
 * should get: the accepted message with the filter's header lines before
 * it. A reject or a deferral throws its SmtpReplyError (the server's one
 * mapping turns it into the reply); a failure reading the message (too
 * large, client gone) propagates as it is.
 */
export async function filterContent(
  options: FilterOptions,
  content: AsyncIterable<Buffer>,
  trace: TraceInfo,
  recipients: readonly string[],
): Promise<AsyncIterable<Buffer>> {
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const input = Buffer.concat([Buffer.from(traceHeaders(trace, undefined), 'latin1'), body]);
  const verdict = await runFilter(options, input, {
    queueId: trace.queueId,
    mailFrom: trace.mailFrom,
    recipients,
    remoteAddress: trace.remoteAddress,
    helo: trace.helo,
  });
  if (verdict.action !== 'accept') throw verdict.reply;
  const stored = verdict.headers === '' ? body : Buffer.concat([Buffer.from(verdict.headers, 'latin1'), body]);
  return (async function* () {
    yield stored;
  })();
}

/** Run the filter on `message`; never rejects (every failure is a deferral). */
export async function runFilter(options: FilterOptions, message: Buffer, envelope: FilterEnvelope): Promise<FilterVerdict> {
  const run = await execute(options, message, envelope);
  const log = options.logger;
  const failure = (reason: string): FilterVerdict => {
    log.warn({ queueId: envelope.queueId, reason, stderr: run.stderr === '' ? undefined : run.stderr }, 'filter failed: message deferred');
    return { action: 'defer', reply: new SmtpReplyError(451, '4.3.0', 'Temporary filter failure, try again later') };
  };
  switch (run.outcome) {
    case 'spawn-error':
      return failure(`cannot run the filter: ${run.detail}`);
    case 'timeout':
      return failure(`no answer within ${options.timeoutMs} ms`);
    case 'too-much-output':
      return failure(`more than ${options.maxOutputBytes ?? DEFAULT_MAX_FILTER_OUTPUT} octets on stdout`);
    case 'signal':
      return failure(`killed by ${run.detail}`);
    case 'exit':
      break;
    default:
      return assertNever(run.outcome);
  }
  const stdout = run.stdout.toString('utf8');
  switch (run.code) {
    case FILTER_EXIT.accept: {
      const headers = headerLines(stdout);
      if (headers === undefined) return failure('exit 0 with output that is not header lines');
      log.info({ queueId: envelope.queueId, headers: headers === '' ? 0 : headers.split('\r\n').length - 1 }, 'filter: accept');
      return { action: 'accept', headers };
    }
    case FILTER_EXIT.reject: {
      const text = replyText(stdout) ?? 'Message rejected by content filter';
      log.info({ queueId: envelope.queueId, text }, 'filter: reject');
      return { action: 'reject', reply: new SmtpReplyError(550, '5.7.1', text) };
    }
    case FILTER_EXIT.defer: {
      const text = replyText(stdout) ?? 'Message deferred by content filter, try again later';
      log.info({ queueId: envelope.queueId, text }, 'filter: defer');
      return { action: 'defer', reply: new SmtpReplyError(451, '4.7.1', text) };
    }
    default:
      return failure(`exit code ${run.code ?? 'none'}${run.code === 127 ? ' (command not found)' : ''}`);
  }
}

interface RunResult {
  readonly outcome: 'exit' | 'signal' | 'timeout' | 'too-much-output' | 'spawn-error';
  readonly code: number | null;
  readonly detail: string;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function execute(options: FilterOptions, message: Buffer, envelope: FilterEnvelope): Promise<RunResult> {
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_FILTER_OUTPUT;
  const timers = options.timers ?? realTimers;
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', options.command], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so a timeout kills the shell and whatever it started.
      detached: true,
      env: {
        ...options.env,
        MAILDIRD_QUEUE_ID: envelope.queueId,
        MAILDIRD_SENDER: envelope.mailFrom,
        MAILDIRD_RECIPIENTS: envelope.recipients.join(' '),
        MAILDIRD_CLIENT_ADDRESS: envelope.remoteAddress ?? '',
        MAILDIRD_HELO: envelope.helo ?? '',
      },
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let settled = false;
    const finish = (result: Omit<RunResult, 'stdout' | 'stderr'>): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      if (result.outcome !== 'exit' && result.outcome !== 'signal') killGroup(child.pid);
      resolve({ ...result, stdout: Buffer.concat(stdout), stderr: stderr.trim() });
    };
    const timer = timers.start('filter', options.timeoutMs, () =>
      finish({ outcome: 'timeout', code: null, detail: '' }),
    );
    child.on('error', (err) => finish({ outcome: 'spawn-error', code: null, detail: err.message }));
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxOutput) {
        finish({ outcome: 'too-much-output', code: null, detail: '' });
        child.stdout.destroy();
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_KEPT) stderr += chunk.toString('utf8').slice(0, STDERR_KEPT - stderr.length);
    });
    // A filter may decide without reading the whole message (or exit at once): EPIPE is not its failure.
    child.stdin.on('error', () => undefined);
    child.stdout.on('error', () => undefined);
    child.stderr.on('error', () => undefined);
    // 'close', not 'exit': the verdict needs all of stdout.
    child.on('close', (code, signal) => {
      if (signal !== null) finish({ outcome: 'signal', code: null, detail: signal });
      else finish({ outcome: 'exit', code, detail: '' });
    });
    child.stdin.end(message);
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** stdout of an accepting filter as CRLF-ended header lines; undefined when it is not header lines. */
function headerLines(stdout: string): string | undefined {
  const lines = stdout.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) return '';
  for (const [i, line] of lines.entries()) {
    // Printable ASCII and tab only: a bare CR or NUL must not reach the stored message.
    if (!/^[\t\x20-\x7e]*$/.test(line)) return undefined;
    const isContinuation = /^[ \t]/.test(line) && line.trim() !== '';
    if (i === 0 ? !HEADER_START.test(line) : !HEADER_START.test(line) && !isContinuation) return undefined;
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** The first stdout line as reply text: printable ASCII, trimmed, bounded; undefined when empty. */
function replyText(stdout: string): string | undefined {
  const first = (stdout.split(/\r?\n/, 1)[0] ?? '').replace(/[^\x20-\x7e]/g, ' ').trim();
  return first === '' ? undefined : first.slice(0, REPLY_TEXT_MAX);
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
