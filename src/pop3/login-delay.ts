/**
 * RFC 2449 section 6.5 LOGIN-DELAY, enforced: a user may log in again only
 * `seconds` after their last successful login; earlier attempts get
 * `-ERR [LOGIN-DELAY]` (after authentication, so it says nothing to a
 * stranger). Kept in memory per server process; every listener of one
 * server shares it. The clock is injected for tests.
 */

export class LoginDelayTracker {
  readonly #seconds: number;
  readonly #now: () => number;
  readonly #lastLogin = new Map<string, number>();

  constructor(seconds: number, now: () => number = Date.now) {
    this.#seconds = seconds;
    this.#now = now;
  }

  get seconds(): number {
    return this.#seconds;
  }

  /** Whole seconds `user` must still wait; 0 when a login is allowed now. */
  remaining(user: string): number {
    if (this.#seconds <= 0) return 0;
    const last = this.#lastLogin.get(user);
    if (last === undefined) return 0;
    const waitMs = last + this.#seconds * 1000 - this.#now();
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : 0;
  }

  /** Note a successful login now. */
  record(user: string): void {
    if (this.#seconds <= 0) return;
    const now = this.#now();
    this.#lastLogin.set(user, now);
    // Forget logins older than the delay so the map stays as small as the set of recent users.
    if (this.#lastLogin.size > 1024) {
      const horizon = now - this.#seconds * 1000;
      for (const [name, at] of this.#lastLogin) if (at <= horizon) this.#lastLogin.delete(name);
    }
  }
}
