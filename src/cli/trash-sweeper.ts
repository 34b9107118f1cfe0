/**
 * The Trash sweeper of `maildird serve` (config `trashRetentionDays`):
 * at start and then every hour, each user of the users file has the
 * messages that sat in their Trash longer than the retention removed for
 * good, through the storage port (MailStore.purgeTrash): front-ends and
 * this module never touch files (DESIGN "The house").
 *
 * Retention 0 keeps Trash forever and starts nothing (DESIGN: EXPIRE
 * NEVER; maildird removes no mail on its own unless told to). One sweep
 * runs at a time; a failure for one user is logged and the others are
 * still swept. A user removed from the users file keeps their Trash.
 */
import type { Logger } from '../log/logger.js';
import { realTimers, type TimerHandle, type Timers } from '../protocol/timers.js';
import type { MailStore, MailUser } from '../storage/store.js';

/** How often the sweep runs after the first: retention is counted in days, so an hour is precise enough. */
export const TRASH_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface TrashSweeperOptions {
  readonly store: MailStore;
  /** The users to sweep, read at each sweep (the users file may have been reloaded). */
  readonly users: () => readonly MailUser[];
  /** Days a message stays in Trash; 0: forever (the sweeper does nothing). */
  readonly retentionDays: number;
  readonly logger: Logger;
  /** Called after each user's purge that removed something (for /metrics). */
  readonly onPurged?: ((purged: number, bytes: number) => void) | undefined;
  /** Clock (ms since the epoch); default Date.now. */
  readonly now?: (() => number) | undefined;
  readonly timers?: Timers | undefined;
  readonly intervalMs?: number | undefined;
}

export interface SweepSummary {
  readonly users: number;
  readonly purged: number;
  readonly bytes: number;
  /** Users whose purge failed (logged). */
  readonly failed: number;
}

export class TrashSweeper {
  readonly #options: TrashSweeperOptions;
  readonly #now: () => number;
  readonly #timers: Timers;
  #timer: TimerHandle | undefined;
  #running: Promise<SweepSummary> | undefined;
  #isStopped = false;

  constructor(options: TrashSweeperOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? realTimers;
  }

  get isEnabled(): boolean {
    return this.#options.retentionDays > 0;
  }

  /** Sweep now (not awaited: start-up does not wait for a big tree), then every interval. Nothing when retention is 0. */
  start(): void {
    if (!this.isEnabled || this.#isStopped) return;
    void this.sweep().finally(() => this.#schedule());
  }

  /**
   * One sweep over every user; the sweep in progress if there is one.
   * Never rejects.
   */
  sweep(): Promise<SweepSummary> {
    this.#running ??= this.#sweepNow().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stop the timer and wait for a sweep in progress (it stops between users). */
  async close(): Promise<void> {
    this.#isStopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(): void {
    if (this.#isStopped) return;
    this.#timer = this.#timers.start('trash-sweep', this.#options.intervalMs ?? TRASH_SWEEP_INTERVAL_MS, () => {
      void this.sweep().finally(() => this.#schedule());
    });
  }

  async #sweepNow(): Promise<SweepSummary> {
    const { store, logger, retentionDays } = this.#options;
    if (retentionDays <= 0) return { users: 0, purged: 0, bytes: 0, failed: 0 };
    const olderThan = new Date(this.#now() - retentionDays * DAY_MS);
    let users = 0;
    let purged = 0;
    let bytes = 0;
    let failed = 0;
    for (const user of this.#options.users()) {
      if (this.#isStopped) break;
      users++;
      try {
        const result = await store.purgeTrash(user, olderThan);
        purged += result.purged;
        bytes += result.bytes;
        if (result.purged > 0) this.#options.onPurged?.(result.purged, result.bytes);
      } catch (err) {
        failed++;
        logger.error({ err, user: user.name }, 'trash purge failed');
      }
    }
    logger.info({ users, purged, bytes, failed, olderThan: olderThan.toISOString(), retentionDays }, 'trash sweep done');
    return { users, purged, bytes, failed };
  }
}
