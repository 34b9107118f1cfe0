/**
 * RFC 2449 section 6.5 LOGIN-DELAY: the least number of seconds between
 * two logins of one user, announced in CAPA and enforced with `-ERR
 * [LOGIN-DELAY]` (section 8.1.1) on the AUTH/PASS/APOP that comes too soon.
 * It spares a server from clients polling every few seconds.
 *
 * Check after the credentials verify (the code is only for the real user)
 * and record only logins that went through: a refused attempt does not
 * restart the wait. Injected clock, no timers; bounded memory (entries
 * expire after the delay, the oldest evicted beyond maxEntries).
 */

export interface LoginDelayOptions {
  /** Minimum seconds between logins; 0 turns the check off. */
  readonly seconds: number;
  /** Milliseconds clock; default Date.now. */
  readonly now?: () => number;
  /** Most users remembered; default 100,000. */
  readonly maxEntries?: number;
}

export class LoginDelay {
  readonly seconds: number;
  readonly #now: () => number;
  readonly #maxEntries: number;
  /** user -> time of the last login, oldest first. */
  readonly #last = new Map<string, number>();

  constructor(options: LoginDelayOptions) {
    if (!Number.isInteger(options.seconds) || options.seconds < 0) {
      throw new RangeError(`LOGIN-DELAY seconds must be a whole number >= 0, not ${options.seconds}`);
    }
    this.seconds = options.seconds;
    this.#now = options.now ?? Date.now;
    this.#maxEntries = Math.max(1, options.maxEntries ?? 100_000);
  }

  /** The CAPA line (`LOGIN-DELAY 900`), or undefined when the delay is off. */
  capability(): string | undefined {
    return this.seconds > 0 ? `LOGIN-DELAY ${this.seconds}` : undefined;
  }

  /** Seconds `user` (the canonical name) must still wait; 0 when a login may go ahead now. */
  remainingSeconds(user: string): number {
    if (this.seconds === 0) return 0;
    const now = this.#now();
    this.#prune(now);
    const last = this.#last.get(user);
    if (last === undefined) return 0;
    const waitMs = last + this.seconds * 1000 - now;
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : 0;
  }

  /** Remember a login that went through. */
  recordLogin(user: string): void {
    if (this.seconds === 0) return;
    const now = this.#now();
    this.#last.delete(user);
    this.#last.set(user, now);
    while (this.#last.size > this.#maxEntries) {
      const oldest = this.#last.keys().next();
      if (oldest.done === true) break;
      this.#last.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#last.size;
  }

  #prune(now: number): void {
    for (const [user, at] of this.#last) {
      if (at + this.seconds * 1000 > now) break;
      this.#last.delete(user);
    }
  }
}
