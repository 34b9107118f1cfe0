/**
 * Writes replies to a socket in batches.
 *
 * The socket stays corked while a session answers commands that are already
 * buffered (a pipelined batch), and is uncorked when the session has to
 * wait for the client (flush()) or when enough is queued. Node then hands
 * every queued chunk to the kernel in one writev: one system call per batch
 * of replies, not one per line (Dovecot corks its output stream the same
 * way in client_input()).
 *
 * Backpressure: callers that stream (RETR of a large message) check
 * `needsDrain` after each write and `await drain()`, which uncorks first:
 * waiting for 'drain' on a corked socket would wait forever.
 */
import type { Writable } from 'node:stream';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

export type DrainResult = 'drained' | 'closed' | 'timeout';

export interface ReplyWriterOptions {
  /** Queued octets above which `needsDrain` is true and the batch is flushed. Default 256 KiB. */
  readonly highWaterMark?: number;
  /**
   * Longest wait for the client to take queued data, in ms (a client that
   * stops reading mid-RETR must not hold a session forever). Default: none.
   */
  readonly drainTimeoutMs?: number;
  readonly timers?: Timers;
}

export class ReplyWriter {
  readonly #sink: Writable;
  readonly #highWaterMark: number;
  readonly #drainTimeoutMs: number | undefined;
  readonly #timers: Timers;
  #corked = false;
  #bytesWritten = 0;

  constructor(sink: Writable, options: ReplyWriterOptions = {}) {
    this.#sink = sink;
    this.#highWaterMark = options.highWaterMark ?? 256 * 1024;
    this.#drainTimeoutMs = options.drainTimeoutMs;
    this.#timers = options.timers ?? realTimers;
  }

  /** Octets handed to the socket so far (replies and message data). */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** True when the caller should `await drain()` before writing more. */
  get needsDrain(): boolean {
    return this.#sink.writableLength >= this.#highWaterMark;
  }

  get isClosed(): boolean {
    return this.#sink.destroyed || this.#sink.writableEnded;
  }

  /** Queue data in the current batch. Writing to a closed socket is a no-op. */
  write(data: Buffer | string): void {
    if (this.isClosed) return;
    if (!this.#corked) {
      this.#sink.cork();
      this.#corked = true;
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.#bytesWritten += bytes.length;
    this.#sink.write(bytes);
    if (this.needsDrain) this.flush();
  }

  /** Send the current batch now. */
  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#sink.uncork();
  }

  /**
   * Write `data` after everything queued and resolve once the socket handed
   * it to the kernel (STLS: the reply must be out before the handshake
   * takes the socket over). Resolves false when the socket closed first.
   */
  writeAndWait(data: Buffer | string): Promise<boolean> {
    this.flush();
    if (this.isClosed) return Promise.resolve(false);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.#bytesWritten += bytes.length;
    return new Promise<boolean>((resolve) => {
      this.#sink.write(bytes, (err) => resolve(err === undefined || err === null));
    });
  }

  /** Flush, then wait until the socket has taken the queue (or closed, or the drain timeout passed). */
  async drain(): Promise<DrainResult> {
    this.flush();
    if (this.isClosed) return 'closed';
    if (!this.#sink.writableNeedDrain) return 'drained';
    return new Promise<DrainResult>((resolve) => {
      const sink = this.#sink;
      let timer: TimerHandle | undefined;
      const settle = (result: DrainResult): void => {
        sink.off('drain', onDrain);
        sink.off('close', onClose);
        sink.off('error', onClose);
        timer?.cancel();
        resolve(result);
      };
      const onDrain = (): void => settle('drained');
      const onClose = (): void => settle('closed');
      sink.on('drain', onDrain);
      sink.on('close', onClose);
      sink.on('error', onClose);
      if (this.#drainTimeoutMs !== undefined) {
        timer = this.#timers.start('drain', this.#drainTimeoutMs, () => settle('timeout'));
      }
    });
  }
}
