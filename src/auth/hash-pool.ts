/**
 * Password checks on worker threads, so a slow hash never stalls the event
 * loop that serves every other session (Dovecot runs its auth workers as
 * separate processes for the same reason). Without it, each Argon2 check
 * (64 MiB, 3 passes) blocks the process for about 250 ms: fifty clients
 * logging in at once would freeze every open session for seconds, and so
 * would an attacker trying unknown users.
 *
 * Only the costly families go to a worker (Argon2, bcrypt, SHA-crypt,
 * MD5-crypt); PLAIN and plain digests are checked inline, where posting a
 * message would cost more than the hash. Workers start on first use, one
 * job each at a time, in FIFO order; idle workers do not keep the process
 * alive. A worker that dies has its job checked inline and is replaced on
 * the next job; after three workers in a row die before finishing a job
 * (they cannot start here), the pool checks everything inline.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkPassword, schemeName, type PasswordCheck, type PasswordOptions } from './password.js';
import type { HashJob, HashResult } from './hash-worker.js';

/** Families worth a thread hop. */
const COSTLY = new Set(['CRYPT', 'SHA512-CRYPT', 'SHA256-CRYPT', 'MD5-CRYPT', 'BLF-CRYPT', 'DES-CRYPT', 'MD5', 'ARGON2ID', 'ARGON2I']);

/** Check a password the way checkPassword does; the pool and the inline function both fit. */
export type PasswordChecker = (stored: string, password: string, options?: PasswordOptions) => Promise<PasswordCheck>;

export interface HashWorkerPoolOptions {
  /** Threads; default the machine's parallelism minus one (the event loop's), at least 1, at most 4. */
  readonly size?: number;
  /** The worker script; default hash-worker.js beside this module (override where a bundler moves it). */
  readonly workerUrl?: URL;
}

interface Pending {
  readonly job: HashJob;
  readonly resolve: (check: PasswordCheck) => void;
}

interface Slot {
  readonly worker: Worker;
  current: Pending | undefined;
  completed: number;
}

/** Workers in a row that may die before finishing a job before the pool gives up on threads. */
const MAX_STARTUP_FAILURES = 3;

export function defaultPoolSize(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class HashWorkerPool {
  readonly size: number;
  readonly #workerUrl: URL;
  readonly #slots = new Set<Slot>();
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;
  #startupFailures = 0;

  constructor(options: HashWorkerPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.size ?? defaultPoolSize()));
    this.#workerUrl = options.workerUrl ?? new URL('./hash-worker.js', import.meta.url);
  }

  /** Threads running now. */
  get threads(): number {
    return this.#slots.size;
  }

  /** True once threads proved unusable here: every check then runs inline. */
  get degraded(): boolean {
    return this.#startupFailures >= MAX_STARTUP_FAILURES;
  }

  /** checkPassword, on a worker for costly schemes. Never rejects. */
  check: PasswordChecker = async (stored, password, options = {}) => {
    if (this.#closed || this.degraded || !COSTLY.has(schemeName(stored, options) ?? '')) {
      return checkPassword(stored, password, options);
    }
    return new Promise<PasswordCheck>((resolve) => {
      const job: HashJob = { id: this.#nextId++, stored, password, defaultScheme: options.defaultScheme };
      this.#queue.push({ job, resolve });
      this.#dispatch();
    });
  };

  /** Stop the threads; queued and running checks finish inline or fail, never hang. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = [...this.#slots];
    this.#slots.clear();
    for (const slot of slots) {
      if (slot.current !== undefined) this.#queue.unshift(slot.current);
      slot.current = undefined;
    }
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
    // Whatever was waiting is checked here, so no caller waits forever.
    for (const pending of this.#queue.splice(0)) runInline(pending);
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let slot = [...this.#slots].find((s) => s.current === undefined);
      if (slot === undefined && this.#slots.size < this.size) slot = this.#spawn();
      if (slot === undefined) return;
      const pending = this.#queue.shift();
      if (pending === undefined) return;
      slot.current = pending;
      slot.worker.ref();
      slot.worker.postMessage(pending.job);
    }
  }

  #spawn(): Slot {
    const worker = new Worker(this.#workerUrl);
    const slot: Slot = { worker, current: undefined, completed: 0 };
    worker.unref();
    worker.on('message', (result: HashResult) => {
      const pending = slot.current;
      if (pending === undefined || pending.job.id !== result.id) return;
      slot.current = undefined;
      slot.completed++;
      this.#startupFailures = 0;
      worker.unref();
      pending.resolve(result.check);
      this.#dispatch();
    });
    const fail = () => {
      if (!this.#slots.delete(slot)) return;
      if (slot.completed === 0) this.#startupFailures++;
      const pending = slot.current;
      slot.current = undefined;
      if (pending !== undefined) runInline(pending);
      void worker.terminate();
      if (this.degraded) {
        for (const waiting of this.#queue.splice(0)) runInline(waiting);
      } else {
        this.#dispatch();
      }
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    this.#slots.add(slot);
    return slot;
  }
}

function runInline(pending: Pending): void {
  const { stored, password, defaultScheme } = pending.job;
  void checkPassword(stored, password, defaultScheme === undefined ? {} : { defaultScheme }).then(pending.resolve);
}
