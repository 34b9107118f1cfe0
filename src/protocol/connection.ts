/**
 * One client connection of a line-oriented protocol: the socket, its line
 * reader and reply writer, the idle and line timers, STARTTLS and the close
 * path. A session drives it with readLine()/write() and never sees the
 * socket, so the reading, batching and timeout rules live here once.
 */
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { LineReader, type LineEvent } from './line-reader.js';
import { ReplyWriter, type DrainResult } from './reply-writer.js';
import { upgradeToTls } from './tls.js';
import { isLoopbackAddress, normaliseAddress } from './address.js';
import type { TimerHandle, Timers } from './timers.js';

export type ReadEvent =
  | LineEvent
  /** No complete command within the idle time (RFC 1939 section 3: at least 10 minutes). */
  | { readonly kind: 'idle-timeout' }
  /** A started line was not finished within the line deadline (a byte-a-minute client). */
  | { readonly kind: 'line-timeout' }
  /** The server is closing: answer and end the session. */
  | { readonly kind: 'shutdown' }
  /** The client closed its side (or the socket is gone). */
  | { readonly kind: 'eof' };

export interface ConnectionSettings {
  /** Longest command line in octets, CRLF included. */
  readonly maxLineLength: number;
  /** Wait for a complete command; also the longest wait for a client to take our output. */
  readonly idleTimeoutMs: number;
  /** Deadline for finishing a line once its first byte arrived. */
  readonly lineTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** Queued output (octets) above which writers wait for the client (and the batch is flushed). */
  readonly writeHighWaterMark: number;
  /** How long to wait for the client to close after we ended, before dropping the socket. */
  readonly lingerMs: number;
  readonly timers: Timers;
}

export class Connection {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** True when the client is on this host: plaintext passwords cannot be sniffed on the way. */
  readonly isLoopback: boolean;
  readonly #settings: ConnectionSettings;
  readonly #rawSocket: Socket;
  #socket: Socket;
  #isTls: boolean;
  #reader!: LineReader;
  #writer!: ReplyWriter;
  #bytesSentBefore = 0;
  #bytesReceivedBefore = 0;
  #readerPromise: Promise<LineEvent | undefined> | undefined;
  /** A line that arrived after a timer ended the wait it was read for. */
  #stashed: ReadEvent | undefined;
  #detachClose: (() => void) | undefined;
  #pending: ((event: ReadEvent) => void) | undefined;
  #idleTimer: TimerHandle | undefined;
  #lineTimer: TimerHandle | undefined;
  #partialLine = false;
  #shutdownRequested = false;
  #closed = false;
  #error: Error | undefined;
  readonly #closeWaiters: (() => void)[] = [];

  constructor(socket: Socket, id: string, settings: ConnectionSettings, secureSocket?: TLSSocket) {
    this.id = id;
    this.#settings = settings;
    this.#rawSocket = socket;
    this.remoteAddress = normaliseAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = normaliseAddress(socket.localAddress);
    this.localPort = socket.localPort ?? 0;
    this.isLoopback = isLoopbackAddress(socket.remoteAddress);
    this.#socket = secureSocket ?? socket;
    this.#isTls = secureSocket !== undefined;
    socket.on('error', (err: Error) => {
      this.#error ??= err;
    });
    this.#attach(this.#socket);
  }

  get isTls(): boolean {
    return this.#isTls;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  get isShuttingDown(): boolean {
    return this.#shutdownRequested;
  }

  /** The first socket error seen (ECONNRESET and friends), for the session log. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Octets written to the client, replies and message data. */
  get bytesSent(): number {
    return this.#bytesSentBefore + this.#writer.bytesWritten;
  }

  /** Octets received from the client (after TLS: the decrypted octets), commands and message data. */
  get bytesReceived(): number {
    return this.#bytesReceivedBefore + this.#reader.bytesRead;
  }

  /** True when a command is already buffered: the session answers it before anything is flushed. */
  get hasBufferedLine(): boolean {
    return this.#reader.hasBufferedLine;
  }

  /** Complete command lines already received and not yet read (see LineReader.peekLines). */
  peekLines(): Buffer[] {
    return this.#stashed === undefined ? this.#reader.peekLines() : [];
  }

  /** The longest line accepted from now on (SASL responses may be longer than commands). */
  set maxLineLength(octets: number) {
    this.#reader.maxLineLength = octets;
  }

  /**
   * The next command line or what ended the wait. Flushes the reply batch
   * before waiting on the network; answers from the buffer without waiting
   * (pipelining). The idle timer runs only while waiting and restarts with
   * each call, so only a complete command resets it.
   */
  async readLine(): Promise<ReadEvent> {
    if (this.#shutdownRequested) return { kind: 'shutdown' };
    if (this.#pending !== undefined) throw new Error('Connection.readLine() is already pending');
    const stashed = this.#stashed;
    if (stashed !== undefined) {
      this.#stashed = undefined;
      return stashed;
    }
    if (this.#readerPromise === undefined && this.#reader.hasBufferedLine) {
      return toReadEvent(await this.#reader.next());
    }
    this.#writer.flush();
    if (this.#closed) return { kind: 'eof' };
    return new Promise<ReadEvent>((resolve) => {
      this.#pending = resolve;
      this.#idleTimer = this.#settings.timers.start('idle', this.#settings.idleTimeoutMs, () =>
        this.#settle({ kind: 'idle-timeout' }),
      );
      if (this.#partialLine) this.#armLineTimer();
      const reading = (this.#readerPromise ??= this.#reader.next());
      void reading.then((event) => {
        if (this.#readerPromise !== reading) return;
        this.#readerPromise = undefined;
        if (this.#pending === undefined) this.#stashed = toReadEvent(event);
        else this.#settle(toReadEvent(event));
      });
    });
  }

  /** Queue a reply (or message data) in the current batch. */
  write(data: Buffer | string): void {
    this.#writer.write(data);
  }

  /** Send the current batch now. */
  flush(): void {
    this.#writer.flush();
  }

  /** True when a streaming writer should `await drain()` before writing more. */
  get needsDrain(): boolean {
    return this.#writer.needsDrain;
  }

  /** Wait for the client to take queued output; 'timeout' after the idle time without progress. */
  drain(): Promise<DrainResult> {
    return this.#writer.drain();
  }

  /**
   * STLS / STARTTLS (RFC 2595 section 4, RFC 3207 section 4.2): throw away
   * every byte received so far that was not yet taken as a command (a
   * command pipelined after STLS is plaintext that a man in the middle may
   * have added), send `reply`, and run the TLS handshake on the same
   * socket. Returns the number of octets discarded. Rejects (and the
   * connection is closed) when the handshake fails.
   */
  async startTls(context: SecureContext, reply: string): Promise<number> {
    if (this.#isTls) throw new Error('connection is already encrypted');
    this.#readerPromise = undefined;
    const discarded = this.#reader.detach();
    this.#bytesReceivedBefore += this.#reader.bytesRead;
    const sent = await this.#writer.writeAndWait(reply);
    if (!sent) throw new Error('connection closed before the TLS handshake');
    this.#bytesSentBefore += this.#writer.bytesWritten;
    this.#detachClose?.();
    const secure = await upgradeToTls(this.#socket, context, this.#settings.handshakeTimeoutMs, this.#settings.timers);
    this.#socket = secure;
    this.#isTls = true;
    this.#attach(secure);
    return discarded;
  }

  /** Ask the session to stop after the current command; a waiting readLine() returns 'shutdown'. */
  requestShutdown(): void {
    this.#shutdownRequested = true;
    this.#settle({ kind: 'shutdown' });
  }

  /**
   * Close gracefully: flush, send FIN (TLS close_notify first), then read
   * and drop anything the client still sends until it closes too or the
   * linger time ends. Closing with unread input would send a RST that can
   * make the client lose our last reply.
   */
  async end(): Promise<void> {
    if (this.#closed) return;
    this.#writer.flush();
    this.#reader.detach();
    const socket = this.#socket;
    socket.on('data', () => {});
    socket.resume();
    socket.end();
    const linger = this.#settings.timers.start('linger', this.#settings.lingerMs, () => this.destroy());
    await this.whenClosed();
    linger.cancel();
  }

  /** Drop the connection at once (force close, fatal errors). */
  destroy(): void {
    this.#socket.destroy();
    this.#rawSocket.destroy();
  }

  /** Resolves once the socket is closed. */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#closeWaiters.push(resolve));
  }

  #attach(socket: Socket): void {
    this.#reader = new LineReader(socket, {
      maxLineLength: this.#settings.maxLineLength,
      onPartialLine: (inProgress) => this.#onPartialLine(inProgress),
    });
    this.#writer = new ReplyWriter(socket, {
      highWaterMark: this.#settings.writeHighWaterMark,
      drainTimeoutMs: this.#settings.idleTimeoutMs,
      timers: this.#settings.timers,
    });
    socket.on('error', (err: Error) => {
      this.#error ??= err;
    });
    const onClose = (): void => this.#onClose();
    socket.once('close', onClose);
    this.#detachClose = () => socket.off('close', onClose);
  }

  #onPartialLine(inProgress: boolean): void {
    this.#partialLine = inProgress;
    if (!inProgress) {
      this.#lineTimer?.cancel();
      this.#lineTimer = undefined;
    } else if (this.#pending !== undefined) {
      this.#armLineTimer();
    }
  }

  #armLineTimer(): void {
    if (this.#lineTimer !== undefined) return;
    this.#lineTimer = this.#settings.timers.start('line', this.#settings.lineTimeoutMs, () =>
      this.#settle({ kind: 'line-timeout' }),
    );
  }

  #settle(event: ReadEvent): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    this.#lineTimer?.cancel();
    this.#lineTimer = undefined;
    pending(event);
  }

  #onClose(): void {
    this.#closed = true;
    this.#settle({ kind: 'eof' });
    for (const waiter of this.#closeWaiters.splice(0)) waiter();
  }
}

function toReadEvent(event: LineEvent | undefined): ReadEvent {
  return event ?? { kind: 'eof' };
}
