/**
 * The primary of `maildird serve` with `workers` > 1 (node:cluster). It
 * forks the workers, which serve POP3 and SMTP/LMTP on listeners the
 * cluster module shares between them (the primary accepts and hands each
 * connection to the next worker, round-robin), and it keeps what must stay
 * one across them:
 *
 * - the connection limits (POP3, each SMTP/LMTP listener): a worker asks before it serves a connection
 *   and says when it closed; the primary counts per server and per address
 *   for all workers (a dead worker's connections are released);
 * - failed logins: each worker's failures and successes are passed to the
 *   others (cluster-throttle.ts);
 * - /metrics: the primary runs HTTP itself and sums its own registry with
 *   every worker's page (src/http/metrics-merge.ts);
 * - SIGHUP is passed to every worker; SIGTERM/SIGINT stops every worker
 *   gracefully before the primary stops; a second signal stops them at once;
 * - a worker that dies is logged and replaced (after a growing pause when
 *   it keeps dying young, so a broken start cannot spin).
 *
 * The maildrop lock is a file lock and the listing cache a file beside the
 * Maildir: both already work across processes (DESIGN "Exclusive access").
 */
import cluster, { type Worker } from 'node:cluster';
import { ConfigError } from '../../errors.js';
import type { ServerMetrics } from '../../http/server-metrics.js';
import type { Logger } from '../../log/logger.js';
import { LocalConnectionGate, type ConnectionGate, type ConnectionLimits } from '../../protocol/connection-gate.js';
import { EXIT } from '../exit-codes.js';
import type { BoundListener } from '../frontends.js';
import type { ListenerState } from '../health.js';
import type { ServeRole } from '../serve-role.js';
import { isMaildirdMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';

export interface PrimaryOptions {
  readonly workers: number;
  /** Limits of each protocol server whose connections the primary counts (`pop3`). */
  readonly limits: Readonly<Record<string, ConnectionLimits>>;
  /** How long workers may take to stop gracefully before they are killed (the sessions' grace plus a margin). */
  readonly stopTimeoutMs: number;
  /** How long a /metrics scrape waits for a worker's page. */
  readonly metricsTimeoutMs?: number;
  /** Pause before replacing a worker that died young, doubling up to maxRestartDelayMs. */
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
}

/** A worker that lived less than this is "young": its replacement waits. */
const YOUNG_MS = 10_000;

interface WorkerState {
  readonly worker: Worker;
  readonly startedAt: number;
  listening: boolean;
  /** Connections it holds, per `server\0address`, released if it dies. */
  readonly held: Map<string, number>;
}

export class PrimaryRole implements ServeRole {
  readonly recoversAtStart = true;
  readonly runsSweeper = true;
  readonly throttle = undefined;

  /** The primary serves no POP3. */
  loginDelay(): undefined {
    return undefined;
  }
  readonly #options: PrimaryOptions;
  readonly #workers = new Map<number, WorkerState>();
  readonly #gates = new Map<string, LocalConnectionGate>();
  readonly #metricsWaiters = new Map<number, (page: string) => void>();
  #logger: Logger | undefined;
  #bound: readonly BoundListener[] = [];
  #isStopping = false;
  #restartDelayMs: number;
  #nextId = 0;
  #exited: (() => void) | undefined;

  constructor(options: PrimaryOptions) {
    this.#options = options;
    this.#restartDelayMs = options.restartDelayMs ?? 1000;
    for (const [server, limits] of Object.entries(options.limits)) this.#gates.set(server, new LocalConnectionGate(limits));
  }

  /** The primary serves HTTP only; POP3 and SMTP/LMTP are the workers'. */
  startsFrontend(name: string): boolean {
    return name === 'http';
  }

  connectionGate(): ConnectionGate | undefined {
    return undefined;
  }

  /** Workers alive and listening now. */
  get listeningWorkers(): number {
    return [...this.#workers.values()].filter((w) => w.listening).length;
  }

  async prepare(parts: { readonly metrics: ServerMetrics; readonly logger: Logger }): Promise<readonly BoundListener[]> {
    this.#logger = parts.logger.child({ component: 'cluster' });
    parts.metrics.setRemoteSource(() => this.#metricsPages());
    const started = Array.from({ length: this.#options.workers }, () => this.#fork());
    await Promise.all(started);
    this.#logger.info({ workers: this.#options.workers, pids: [...this.#workers.values()].map((w) => w.worker.process.pid) }, 'workers listening');
    return this.#bound;
  }

  remoteListeners(): readonly ListenerState[] {
    const isUp = this.listeningWorkers > 0;
    return this.#bound.map((b) => ({ name: b.name, address: b.address, isUp }));
  }

  announce(): boolean {
    return true;
  }

  hangup(): void {
    for (const { worker } of this.#workers.values()) {
      if (!worker.isDead()) worker.process.kill('SIGHUP');
    }
  }

  /**
   * Stop every worker gracefully and wait for them (a second call, the
   * operator's second signal, stops them at once). Workers still running
   * after stopTimeoutMs are killed.
   */
  async stopOthers(): Promise<void> {
    if (this.#isStopping) {
      this.#broadcast({ maildird: 'stop-now' });
      return;
    }
    this.#isStopping = true;
    if (this.#workers.size === 0) return;
    const allExited = new Promise<void>((resolve) => {
      this.#exited = resolve;
    });
    this.#broadcast({ maildird: 'stop' });
    const timer = setTimeout(() => {
      this.#logger?.warn({ workers: this.#workers.size }, 'workers did not stop in time: killed');
      for (const { worker } of this.#workers.values()) worker.process.kill('SIGKILL');
    }, this.#options.stopTimeoutMs);
    await allExited;
    clearTimeout(timer);
  }

  /** Fork one worker; resolves once it listens, rejects if it exits first. */
  #fork(): Promise<void> {
    const worker = cluster.fork();
    const state: WorkerState = { worker, startedAt: Date.now(), listening: false, held: new Map() };
    this.#workers.set(worker.id, state);
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (!isMaildirdMessage(message)) return;
        const m = message as WorkerMessage;
        if (m.maildird === 'listening') {
          state.listening = true;
          if (this.#bound.length === 0) this.#bound = m.bound;
          resolve();
          return;
        }
        this.#onMessage(state, m);
      });
      worker.on('exit', (code, signal) => {
        const wasListening = state.listening;
        this.#onExit(state, code, signal);
        if (!wasListening) {
          reject(
            new ConfigError(`a worker process exited during start-up (exit code ${code ?? signal}); see its error above`, {
              exitCode: typeof code === 'number' && code !== 0 ? code : EXIT.software,
            }),
          );
        }
      });
    });
  }

  #onMessage(state: WorkerState, message: WorkerMessage): void {
    switch (message.maildird) {
      case 'admit': {
        const gate = this.#gates.get(message.server);
        const refusal = gate?.admit(message.remote) ?? undefined;
        if (gate !== undefined) {
          const key = `${message.server}\u0000${message.remote}`;
          state.held.set(key, (state.held.get(key) ?? 0) + 1);
        }
        this.#send(state.worker, { maildird: 'admitted', id: message.id, refusal: refusal ?? null });
        return;
      }
      case 'release': {
        const key = `${message.server}\u0000${message.remote}`;
        const held = state.held.get(key) ?? 0;
        if (held === 0) return;
        if (held === 1) state.held.delete(key);
        else state.held.set(key, held - 1);
        this.#gates.get(message.server)?.release(message.remote);
        return;
      }
      case 'throttle':
      case 'login':
        for (const other of this.#workers.values()) if (other !== state) this.#send(other.worker, message);
        return;
      case 'metrics-page': {
        const waiter = this.#metricsWaiters.get(message.id);
        this.#metricsWaiters.delete(message.id);
        waiter?.(message.page);
        return;
      }
      default:
        return;
    }
  }

  #onExit(state: WorkerState, code: number | null, signal: string | null): void {
    this.#workers.delete(state.worker.id);
    // Its connections died with it.
    for (const [key, count] of state.held) {
      const [server = '', remote = ''] = key.split('\u0000');
      for (let i = 0; i < count; i++) this.#gates.get(server)?.release(remote);
    }
    state.held.clear();
    if (this.#isStopping) {
      this.#logger?.info({ worker: state.worker.id, pid: state.worker.process.pid, code, signal }, 'worker stopped');
      if (this.#workers.size === 0) this.#exited?.();
      return;
    }
    if (!state.listening) return; // start-up failure: prepare() rejects, serve stops
    const lived = Date.now() - state.startedAt;
    const delayMs = lived < YOUNG_MS ? this.#restartDelayMs : 0;
    this.#restartDelayMs =
      lived < YOUNG_MS ? Math.min(this.#restartDelayMs * 2, this.#options.maxRestartDelayMs ?? 30_000) : (this.#options.restartDelayMs ?? 1000);
    this.#logger?.error(
      { worker: state.worker.id, pid: state.worker.process.pid, code, signal, livedMs: lived, restartInMs: delayMs },
      'worker died; starting a new one',
    );
    setTimeout(() => {
      if (this.#isStopping) return;
      this.#fork().then(
        () => this.#logger?.info({ workers: this.listeningWorkers }, 'replacement worker listening'),
        (err: unknown) => this.#logger?.error({ err }, 'replacement worker failed to start'),
      );
    }, delayMs).unref();
  }

  /** Every live worker's /metrics page; a worker that does not answer in time is left out of this scrape. */
  async #metricsPages(): Promise<string[]> {
    const timeoutMs = this.#options.metricsTimeoutMs ?? 2000;
    const asks = [...this.#workers.values()]
      .filter((w) => w.listening && !w.worker.isDead())
      .map(
        (w) =>
          new Promise<string>((resolve) => {
            const id = ++this.#nextId;
            const timer = setTimeout(() => {
              this.#metricsWaiters.delete(id);
              resolve('');
            }, timeoutMs);
            this.#metricsWaiters.set(id, (page) => {
              clearTimeout(timer);
              resolve(page);
            });
            this.#send(w.worker, { maildird: 'metrics', id });
          }),
      );
    return Promise.all(asks);
  }

  #broadcast(message: PrimaryMessage): void {
    for (const { worker } of this.#workers.values()) this.#send(worker, message);
  }

  #send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  }
}
