/**
 * Splits a byte stream into command lines for line-oriented protocols.
 *
 * - A line ends at LF; a CR just before it is dropped, so CRLF and bare LF
 *   clients both work (RFC 1939 section 3 asks for CRLF; being liberal here
 *   costs nothing and helps hand-typed sessions).
 * - A line longer than the limit is never buffered whole: once it passes
 *   the limit its bytes are counted and dropped up to the next LF, and one
 *   `too-long` event takes the line's place, so the reply to it comes in
 *   order with the replies to its neighbours.
 * - Reading is paused while complete lines wait to be consumed, so a client
 *   that pipelines commands is answered in order and cannot make us buffer
 *   without bound; one socket read may still yield many lines, which the
 *   consumer takes without waiting for the network (batching).
 */
import type { Readable } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;

export type LineEvent =
  /** One complete line without its CRLF/LF. May share memory with the socket chunk: copy to keep it. */
  | { readonly kind: 'line'; readonly line: Buffer }
  /** A line over the limit, discarded; `length` counts its octets without the CRLF/LF. */
  | { readonly kind: 'too-long'; readonly length: number };

export interface LineReaderOptions {
  /** Longest accepted line in octets, INCLUDING the CRLF (RFC 2449 section 4 counts it). */
  readonly maxLineLength: number;
  /**
   * Called when a partial line starts or ends being in progress (a first
   * byte arrived without its LF / the line completed), so the owner can run
   * a deadline for finishing a started line (slowloris defence).
   */
  readonly onPartialLine?: (inProgress: boolean) => void;
}

type Waiter = (value: LineEvent | undefined) => void;

export class LineReader {
  readonly #source: Readable;
  #maxContent: number;
  readonly #onPartialLine: ((inProgress: boolean) => void) | undefined;
  /** Complete events not yet taken by next(). */
  readonly #queue: LineEvent[] = [];
  /** Pieces of the line in progress (only while under the limit). */
  #partial: Buffer[] = [];
  #partialLength = 0;
  /** Octets of an over-long line dropped so far; -1 when not discarding. */
  #discarded = -1;
  /** Last octet dropped, to leave a CR before the LF out of the count. */
  #lastDiscarded = -1;
  #waiter: Waiter | undefined;
  #ended = false;
  #detached = false;
  #partialInProgress = false;
  #bytesRead = 0;
  readonly #onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    this.#bytesRead += bytes.length;
    this.#push(bytes);
  };
  readonly #onEnd = (): void => this.#finish();

  constructor(source: Readable, options: LineReaderOptions) {
    if (!Number.isInteger(options.maxLineLength) || options.maxLineLength < 3) {
      throw new RangeError(`maxLineLength must be an integer >= 3, got ${options.maxLineLength}`);
    }
    this.#source = source;
    this.#maxContent = options.maxLineLength - 2;
    this.#onPartialLine = options.onPartialLine;
    source.on('data', this.#onData);
    source.on('end', this.#onEnd);
    source.on('close', this.#onEnd);
  }

  /** Change the limit (e.g. longer SASL response lines, RFC 5034 section 4). Applies from the next byte. */
  set maxLineLength(octets: number) {
    this.#maxContent = Math.max(1, octets - 2);
  }

  get maxLineLength(): number {
    return this.#maxContent + 2;
  }

  /** Octets taken from the source so far (for the byte counters of /metrics). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** True when a complete line (or too-long event) is waiting: next() will not touch the network. */
  get hasBufferedLine(): boolean {
    return this.#queue.length > 0;
  }

  /**
   * The complete lines already buffered, in order, without taking them
   * (a session may prepare for pipelined commands, e.g. read ahead the
   * messages pipelined RETRs will ask for). Views: do not keep or change them.
   */
  peekLines(): Buffer[] {
    const lines: Buffer[] = [];
    for (const event of this.#queue) if (event.kind === 'line') lines.push(event.line);
    return lines;
  }

  /** True once the source ended (EOF or close) and every buffered line was taken. */
  get isDone(): boolean {
    return this.#ended && this.#queue.length === 0;
  }

  /**
   * The next line event, or undefined at end of input. Only one caller may
   * wait at a time. Resumes the source only when nothing is buffered.
   */
  next(): Promise<LineEvent | undefined> {
    if (this.#waiter !== undefined) return Promise.reject(new Error('LineReader.next() is already pending'));
    const ready = this.#queue.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#ended || this.#detached) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiter = resolve;
      this.#source.resume();
    });
  }

  /**
   * Stop reading from the source and throw away everything buffered,
   * complete lines and partial ones. Used by STARTTLS (RFC 2595 section 4,
   * RFC 3207 section 4.2): plaintext a client pipelined after the command
   * must never be taken as a command after the handshake. A pending next()
   * resolves with undefined. Returns the number of octets thrown away.
   */
  detach(): number {
    let dropped = this.#partialLength;
    for (const event of this.#queue) dropped += event.kind === 'line' ? event.line.length + 1 : event.length + 1;
    this.#queue.length = 0;
    this.#partial = [];
    this.#partialLength = 0;
    this.#discarded = -1;
    this.#setPartial(false);
    this.#detached = true;
    this.#source.off('data', this.#onData);
    this.#source.off('end', this.#onEnd);
    this.#source.off('close', this.#onEnd);
    this.#source.pause();
    // Bytes the stream already pulled from the kernel but has not emitted.
    for (let chunk = this.#source.read() as Buffer | null; chunk !== null; chunk = this.#source.read() as Buffer | null) {
      dropped += chunk.length;
    }
    this.#wake(undefined);
    return dropped;
  }

  #push(chunk: Buffer): void {
    if (this.#detached) return;
    let start = 0;
    for (let lf = chunk.indexOf(LF, start); lf !== -1; lf = chunk.indexOf(LF, start)) {
      this.#completeLine(chunk, start, lf);
      start = lf + 1;
    }
    if (start < chunk.length) this.#keepTail(chunk.subarray(start));
    this.#setPartial(this.#partialLength > 0 || this.#discarded >= 0);
    if (this.#waiter !== undefined && this.#queue.length > 0) this.#wake(this.#queue.shift());
    // Hold further input until the consumer has taken what is here.
    if (this.#queue.length > 0) this.#source.pause();
  }

  #completeLine(chunk: Buffer, start: number, lf: number): void {
    if (this.#discarded >= 0) {
      const length = this.#discarded + (lf - start);
      const beforeLf = lf > start ? chunk[lf - 1] : this.#lastDiscarded;
      this.#discarded = -1;
      this.#queue.push({ kind: 'too-long', length: beforeLf === CR ? length - 1 : length });
      return;
    }
    let line: Buffer;
    if (this.#partialLength === 0) {
      line = chunk.subarray(start, lf);
    } else {
      this.#partial.push(chunk.subarray(start, lf));
      line = Buffer.concat(this.#partial, this.#partialLength + (lf - start));
      this.#partial = [];
      this.#partialLength = 0;
    }
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length > this.#maxContent) {
      this.#queue.push({ kind: 'too-long', length: line.length });
    } else {
      this.#queue.push({ kind: 'line', line });
    }
  }

  #keepTail(tail: Buffer): void {
    if (this.#discarded >= 0) {
      this.#discarded += tail.length;
      this.#lastDiscarded = tail[tail.length - 1] as number;
      return;
    }
    // +1: a CR that may precede the coming LF is not part of the content.
    if (this.#partialLength + tail.length > this.#maxContent + 1) {
      this.#discarded = this.#partialLength + tail.length;
      this.#lastDiscarded = tail[tail.length - 1] as number;
      this.#partial = [];
      this.#partialLength = 0;
      return;
    }
    // Copy: a view would pin the whole socket chunk for a few bytes.
    this.#partial.push(Buffer.from(tail));
    this.#partialLength += tail.length;
  }

  #setPartial(inProgress: boolean): void {
    if (inProgress === this.#partialInProgress) return;
    this.#partialInProgress = inProgress;
    this.#onPartialLine?.(inProgress);
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    // An unterminated last line is dropped: RFC 1939 commands end with CRLF.
    this.#partial = [];
    this.#partialLength = 0;
    this.#discarded = -1;
    this.#setPartial(false);
    if (this.#queue.length === 0) this.#wake(undefined);
  }

  #wake(value: LineEvent | undefined): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    waiter(value);
  }
}
