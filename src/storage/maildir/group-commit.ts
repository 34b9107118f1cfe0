/**
 * Group commit of directory fsyncs (DESIGN.md "Where the speed comes from").
 *
 * A delivery is durable only once the rename of its file into `new/` is on
 * disk, which takes an fsync of `new/` that starts after the rename
 * completed (an fsync that was already running may have flushed the
 * directory before the rename and proves nothing about it). One directory
 * fsync, though, makes every rename that completed before it started
 * durable. So concurrent deliveries into one directory share it:
 *
 * - fewer than `maxInFlight` fsyncs of that directory running (default
 *   2): start one now; it starts after the caller's rename, so it covers
 *   the caller;
 * - as many running: join the next batch, which starts the moment one of
 *   them ends and covers every caller that joined meanwhile.
 *
 * Under load this gives one directory fsync per batch instead of one per
 * message, and never acknowledges a message before an fsync that covers it.
 * Why two at a time and not one: with one, a rename that completes just
 * after an fsync started waits for that whole fsync and then its own (1.5
 * fsyncs on average); a second one in flight starts it at once. Measured at
 * 20 SMTP senders: 2-6% more messages a second for about 0.15 more
 * directory fsyncs per message; a third gained nothing.
 * Nothing is skipped or delayed on purpose: a lone delivery gets its fsync
 * at once, and batches form only while the disk is busy anyway.
 *
 * Parallelism: Node runs file-system calls on the libuv thread pool
 * (UV_THREADPOOL_SIZE threads, read once when the pool starts; bin/maildird
 * makes it 8 instead of libuv's 4). Every fsync (the per-message file
 * fsyncs and these directory fsyncs) holds one of those threads for its
 * whole duration, so at most that many fsyncs are in flight in the process;
 * further ones queue in libuv. That bound is why batching the directory
 * fsyncs matters: with 20 concurrent deliveries, one directory fsync per
 * message would hold pool threads the file fsyncs and opens are waiting
 * for; `maxInFlight` bounds the threads one busy directory can hold.
 */
import type { FsLayer } from './fs.js';

interface Batch {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A batch nobody awaits any more (all its callers gave up) must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

interface DirState {
  /** Directory fsyncs in flight. */
  running: number;
  /** Callers waiting for the fsync that starts after the running one. */
  next: Batch | undefined;
}

export interface GroupCommitStats {
  /** Directory fsyncs started. */
  readonly fsyncs: number;
  /** sync() calls, i.e. messages (or other changes) acknowledged through a directory fsync. */
  readonly requests: number;
}

export class GroupCommit {
  readonly #fs: FsLayer;
  readonly #onFsync: (() => void) | undefined;
  readonly #maxInFlight: number;
  readonly #dirs = new Map<string, DirState>();
  #fsyncs = 0;
  #requests = 0;

  /** `onFsync` is called as each directory fsync starts (for store-wide fsync counters). */
  constructor(fs: FsLayer, onFsync?: () => void, maxInFlight = 2) {
    this.#fs = fs;
    this.#onFsync = onFsync;
    this.#maxInFlight = Math.max(1, maxInFlight);
  }

  /**
   * Resolve once an fsync of `dir` that started after this call has
   * completed; reject with its error if that fsync fails. Call only after
   * the rename (link, unlink) to be made durable has completed.
   */
  sync(dir: string): Promise<void> {
    this.#requests += 1;
    let state = this.#dirs.get(dir);
    if (state === undefined) {
      state = { running: 0, next: undefined };
      this.#dirs.set(dir, state);
    }
    state.next ??= newBatch();
    const { promise } = state.next;
    if (state.running < this.#maxInFlight) this.#flush(dir, state);
    return promise;
  }

  stats(): GroupCommitStats {
    return { fsyncs: this.#fsyncs, requests: this.#requests };
  }

  #flush(dir: string, state: DirState): void {
    const batch = state.next;
    if (batch === undefined) {
      if (state.running === 0) this.#dirs.delete(dir);
      return;
    }
    state.next = undefined;
    state.running += 1;
    this.#fsyncs += 1;
    this.#onFsync?.();
    // fsyncDir is called synchronously here, so the fsync starts after
    // every rename whose caller is in `batch`.
    let started: Promise<void>;
    try {
      started = this.#fs.fsyncDir(dir);
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then(
      () => batch.resolve(),
      (err: unknown) => batch.reject(err),
    ).finally(() => {
      state.running -= 1;
      this.#flush(dir, state);
    });
  }
}
