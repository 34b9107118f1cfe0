/**
 * The failed-login slowdown (src/auth/throttle.ts) shared by worker
 * processes. Each worker keeps a full copy of the tables: a failure or
 * success it sees is applied locally and published; the primary passes it
 * to every other worker, which applies it to its copy. So attemptDelayMs
 * stays a synchronous, local question, and a client spreading its attempts
 * over the workers owes the same delays as against one process.
 *
 * The only gap is the time a message takes to cross two IPC hops (well
 * under a millisecond): attempts checked inside that window have not seen
 * each other's failures. One process has the same window, wider: password
 * checks run concurrently (argon2 in a thread pool) and each attempt's
 * delay is decided before the failures in flight are recorded. A worker
 * that replaces a dead one starts with empty tables; the others keep theirs.
 */
import { LoginThrottle, type LoginThrottleOptions } from '../../auth/throttle.js';
import type { ThrottleEvent } from './messages.js';

export class ClusterThrottle extends LoginThrottle {
  readonly #publish: (event: ThrottleEvent) => void;

  constructor(publish: (event: ThrottleEvent) => void, options: LoginThrottleOptions = {}) {
    super(options);
    this.#publish = publish;
  }

  override recordFailure(address: string, user?: string): number {
    this.#publish({ maildird: 'throttle', result: 'failure', address, user: user ?? null });
    return super.recordFailure(address, user);
  }

  override recordSuccess(address: string, user?: string): void {
    this.#publish({ maildird: 'throttle', result: 'success', address, user: user ?? null });
    super.recordSuccess(address, user);
  }

  /** Apply what another worker saw, without publishing it again. */
  applyRemote(event: ThrottleEvent): void {
    const user = event.user ?? undefined;
    if (event.result === 'failure') super.recordFailure(event.address, user);
    else super.recordSuccess(event.address, user);
  }
}
