/**
 * The clocks of one SMTP connection, beyond smtp-server's own socket
 * timeout (which any received byte resets, so a client trickling one byte
 * a minute would never be cut off):
 *
 *   idle  runs while the server waits for a command; only a complete
 *         command line stops it (RFC 5321 4.5.3.2.7: 5 minutes).
 *   line  starts with the first byte of a command line and ends with the
 *         line: a byte-a-minute client cannot hold a slot for long.
 *   data  during DATA, a window timer: each window must bring at least
 *         `minDataBytesPerWindow` octets (as Postfix's smtpd_min_data_rate
 *         does), or the connection is closed.
 *
 * While the server itself works (a handler is pending, a message is being
 * stored) no clock runs: RFC 5321 4.5.3.2 has the client wait for us.
 * Timers come through the injected `Timers` (src/protocol/timers.ts), so
 * tests fire them by name instead of sleeping.
 */
import type { TimerHandle, Timers } from '../protocol/timers.js';
import { REPLIES, type SmtpReply } from './replies.js';

export interface TimeoutSettings {
  readonly timers: Timers;
  readonly idleTimeoutMs: number;
  readonly lineTimeoutMs: number;
  readonly dataWindowMs: number;
  /** Octets each data window must bring; 0 turns the rate check off (the window still catches a stalled client). */
  readonly minDataBytesPerWindow: number;
}

type Phase = 'waiting' | 'busy' | 'data' | 'closed';

export class ConnectionTimeouts {
  readonly #settings: TimeoutSettings;
  readonly #expire: (reply: SmtpReply) => void;
  readonly #isServerBusy: () => boolean;
  #phase: Phase = 'busy';
  #idle: TimerHandle | undefined;
  #line: TimerHandle | undefined;
  #data: TimerHandle | undefined;
  #windowBytes = 0;

  /**
   * @param expire called once when a clock runs out: send the reply (a 421) and close.
   * @param isServerBusy true while smtp-server waits on one of our handlers.
   */
  constructor(settings: TimeoutSettings, expire: (reply: SmtpReply) => void, isServerBusy: () => boolean) {
    this.#settings = settings;
    this.#expire = expire;
    this.#isServerBusy = isServerBusy;
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The server sent its reply (or greeting) and waits for the next command. */
  waitForCommand(): void {
    if (this.#phase === 'closed') return;
    this.#cancelAll();
    this.#phase = 'waiting';
    this.#startIdle();
  }

  /** A complete command line arrived: the client is no longer idle. */
  commandStarted(): void {
    if (this.#phase === 'closed') return;
    this.#cancelAll();
    this.#phase = 'busy';
  }

  /** Octets arrived from the client (before parsing). */
  received(octets: number): void {
    if (this.#phase === 'waiting' && this.#line === undefined && octets > 0) {
      this.#line = this.#settings.timers.start('line', this.#settings.lineTimeoutMs, () => this.#fire(REPLIES.lineTimeout));
    } else if (this.#phase === 'data') {
      this.#windowBytes += octets;
    }
  }

  /** The 354 went out: message data is due. */
  dataStarted(): void {
    if (this.#phase === 'closed') return;
    this.#cancelAll();
    this.#phase = 'data';
    this.#windowBytes = 0;
    this.#startDataWindow();
  }

  /** The final "." arrived: the server stores the message, no clock runs. */
  dataEnded(): void {
    if (this.#phase !== 'data') return;
    this.#cancelAll();
    this.#phase = 'busy';
  }

  close(): void {
    this.#cancelAll();
    this.#phase = 'closed';
  }

  #startIdle(): void {
    this.#idle = this.#settings.timers.start('idle', this.#settings.idleTimeoutMs, () => {
      this.#idle = undefined;
      if (this.#phase !== 'waiting') return;
      // A pipelined command whose handler is still running is not idleness.
      if (this.#isServerBusy()) {
        this.#startIdle();
        return;
      }
      this.#fire(REPLIES.idleTimeout);
    });
  }

  #startDataWindow(): void {
    this.#data = this.#settings.timers.start('data', this.#settings.dataWindowMs, () => {
      this.#data = undefined;
      if (this.#phase !== 'data') return;
      const bytes = this.#windowBytes;
      this.#windowBytes = 0;
      if (bytes === 0 || bytes < this.#settings.minDataBytesPerWindow) {
        this.#fire(REPLIES.dataTooSlow);
        return;
      }
      this.#startDataWindow();
    });
  }

  #fire(reply: SmtpReply): void {
    this.close();
    this.#expire(reply);
  }

  #cancelAll(): void {
    this.#idle?.cancel();
    this.#line?.cancel();
    this.#data?.cancel();
    this.#idle = this.#line = this.#data = undefined;
  }
}
