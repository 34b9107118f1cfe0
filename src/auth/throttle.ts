/**
 * Failed-login slowdown, shared by POP3 and SMTP AUTH.
 *
 * Per remote address, consecutive failures cost a delay that doubles: the
 * first failure is free (a typo), then 1 s, 2 s, 4 s, 8 s, capped at 15 s.
 * Per user name the same curve is capped low (2 s), so an attacker spraying
 * one user's password from many addresses slows down without locking the
 * real user out. A success resets both; a quiet period (15 min) forgets.
 *
 * The delay is served BEFORE the next credentials are checked
 * (attemptDelayMs), not only before the failure reply: a client that
 * learned to read "no answer within 100 ms" as a failure could otherwise
 * hang up and retry at full speed.
 *
 * Pure bookkeeping with an injected clock: nothing here sleeps or sets a
 * timer. Memory is bounded: each table holds at most maxEntries, the least
 * recently failed evicted first, and expired entries are dropped as the
 * oldest ones are met.
 */
import { isIPv6 } from 'node:net';

export interface ThrottlePolicy {
  /** The delay after the first failure past the free ones. */
  readonly baseDelayMs: number;
  /** Cap per remote address. */
  readonly maxIpDelayMs: number;
  /** Cap per user name: small, so nobody can lock a user out. */
  readonly maxUserDelayMs: number;
  /** Failures that cost nothing (typos). */
  readonly freeFailures: number;
  /** A record untouched this long is forgotten. */
  readonly forgetAfterMs: number;
  /** Most records per table (addresses, users). */
  readonly maxEntries: number;
}

export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = Object.freeze({
  baseDelayMs: 1000,
  maxIpDelayMs: 15_000,
  maxUserDelayMs: 2000,
  freeFailures: 1,
  forgetAfterMs: 15 * 60_000,
  maxEntries: 10_000,
});

/** Delay owed after `failures` consecutive failures: 0 for the free ones, then base, 2x base, 4x base... up to `capMs`. */
export function failureDelayMs(failures: number, policy: Pick<ThrottlePolicy, 'baseDelayMs' | 'freeFailures'>, capMs: number): number {
  const charged = failures - policy.freeFailures;
  if (!(charged > 0)) return 0;
  // 2^30 already dwarfs any cap; stop the exponent before it overflows.
  return Math.min(capMs, policy.baseDelayMs * 2 ** Math.min(charged - 1, 30));
}

/**
 * The key an address is throttled under: IPv4 as is (also when mapped into
 * IPv6), IPv6 by its /64, since one host commonly holds a whole /64.
 */
export function throttleKeyForAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  const bare = address.replace(/%.*$/, '');
  if (!isIPv6(bare)) return address;
  const groups = expandIPv6(bare);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** Eight lower-case, unpadded hextets of a valid IPv6 address (embedded IPv4 included). */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => Number.parseInt(g, 16).toString(16));
}

interface Record {
  failures: number;
  lastFailureAt: number;
}

/** One table of consecutive failures, ordered by last failure (Map insertion order). */
class FailureTable {
  readonly #records = new Map<string, Record>();
  readonly #forgetAfterMs: number;
  readonly #maxEntries: number;

  constructor(forgetAfterMs: number, maxEntries: number) {
    this.#forgetAfterMs = forgetAfterMs;
    this.#maxEntries = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#records.size;
  }

  failures(key: string, now: number): number {
    this.#prune(now);
    const record = this.#records.get(key);
    return record === undefined || this.#expired(record, now) ? 0 : record.failures;
  }

  fail(key: string, now: number): number {
    this.#prune(now);
    const old = this.#records.get(key);
    const failures = (old === undefined || this.#expired(old, now) ? 0 : old.failures) + 1;
    // Delete then set: the record moves to the end, so the first one is always the oldest.
    this.#records.delete(key);
    this.#records.set(key, { failures, lastFailureAt: now });
    while (this.#records.size > this.#maxEntries) {
      const oldest = this.#records.keys().next();
      if (oldest.done === true) break;
      this.#records.delete(oldest.value);
    }
    return failures;
  }

  reset(key: string): void {
    this.#records.delete(key);
  }

  #expired(record: Record, now: number): boolean {
    return now - record.lastFailureAt >= this.#forgetAfterMs;
  }

  #prune(now: number): void {
    for (const [key, record] of this.#records) {
      if (!this.#expired(record, now)) break;
      this.#records.delete(key);
    }
  }
}

export interface LoginThrottleOptions extends Partial<ThrottlePolicy> {
  /** Milliseconds clock; default Date.now. */
  readonly now?: () => number;
}

export class LoginThrottle {
  readonly policy: ThrottlePolicy;
  readonly #now: () => number;
  readonly #ips: FailureTable;
  readonly #users: FailureTable;

  constructor(options: LoginThrottleOptions = {}) {
    const { now, ...policy } = options;
    this.policy = Object.freeze({ ...DEFAULT_THROTTLE_POLICY, ...policy });
    this.#now = now ?? Date.now;
    this.#ips = new FailureTable(this.policy.forgetAfterMs, this.policy.maxEntries);
    this.#users = new FailureTable(this.policy.forgetAfterMs, this.policy.maxEntries);
  }

  /**
   * How long to wait before checking the next credentials from `address`
   * for `user` (the login as given, if known): the larger of the address's
   * and the user's delays.
   */
  attemptDelayMs(address: string, user?: string): number {
    const now = this.#now();
    const ip = failureDelayMs(this.#ips.failures(throttleKeyForAddress(address), now), this.policy, this.policy.maxIpDelayMs);
    const byUser =
      user === undefined ? 0 : failureDelayMs(this.#users.failures(userThrottleKey(user), now), this.policy, this.policy.maxUserDelayMs);
    return Math.max(ip, byUser);
  }

  /** Count a failed login; returns the delay the next attempt will owe (for logs). */
  recordFailure(address: string, user?: string): number {
    const now = this.#now();
    this.#ips.fail(throttleKeyForAddress(address), now);
    if (user !== undefined) this.#users.fail(userThrottleKey(user), now);
    return this.attemptDelayMs(address, user);
  }

  /** A successful login clears the address and the user. */
  recordSuccess(address: string, user?: string): void {
    this.#ips.reset(throttleKeyForAddress(address));
    if (user !== undefined) this.#users.reset(userThrottleKey(user));
  }

  /** Records held, for metrics and the memory bound's tests. */
  get size(): { readonly addresses: number; readonly users: number } {
    return { addresses: this.#ips.size, users: this.#users.size };
  }
}

/** Users are counted without regard to case, so `Alice` and `alice` share one budget whatever the name setting. */
function userThrottleKey(user: string): string {
  return user.toLowerCase();
}
