/**
 * POP3 LOGIN-DELAY (src/auth/login-delay.ts) shared by worker processes, as
 * cluster-throttle.ts shares the failed-login slowdown: each worker keeps a
 * full copy of the last-login table; a login it lets through is recorded
 * locally and published, and the primary passes it to every other worker.
 * So the check stays a synchronous, local question, and a client that
 * reconnects to another worker waits as long as against one process. The
 * gap is the two IPC hops (well under a millisecond); a worker that
 * replaces a dead one starts with an empty table.
 */
import { LoginDelay, type LoginDelayOptions } from '../../auth/login-delay.js';
import type { LoginDelayEvent } from './messages.js';

export class ClusterLoginDelay extends LoginDelay {
  readonly #publish: (event: LoginDelayEvent) => void;

  constructor(publish: (event: LoginDelayEvent) => void, options: LoginDelayOptions) {
    super(options);
    this.#publish = publish;
  }

  override recordLogin(user: string): void {
    if (this.seconds === 0) return;
    this.#publish({ maildird: 'login', user });
    super.recordLogin(user);
  }

  /** Apply a login another worker let through, without publishing it again. */
  applyRemote(event: LoginDelayEvent): void {
    super.recordLogin(event.user);
  }
}
