/**
 * The worker side of `maildird serve` with `workers` > 1: a process that
 * serves POP3 and SMTP/LMTP on listeners its primary shares with it
 * (node:cluster), counts connections through the primary, shares failed
 * logins with the other workers, and answers the primary's metrics
 * requests. It stops when the primary says so (or on SIGTERM), at once when
 * the primary says so again or is gone.
 */
import cluster from 'node:cluster';
import type { GateRefusal, ConnectionGate } from '../../protocol/connection-gate.js';
import type { ServerMetrics } from '../../http/server-metrics.js';
import { EXIT } from '../exit-codes.js';
import type { BoundListener } from '../frontends.js';
import type { ServeRole } from '../serve-role.js';
import type { ShutdownSignals } from '../signals.js';
import { ClusterLoginDelay } from './cluster-login-delay.js';
import { ClusterThrottle } from './cluster-throttle.js';
import { isMaildirdMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';

/** The IPC channel to the primary, as this process has it. */
interface Channel {
  send(message: WorkerMessage): void;
  onMessage(listener: (message: PrimaryMessage) => void): void;
  onDisconnect(listener: () => void): void;
  disconnect(): void;
}

const processChannel: Channel = {
  send(message) {
    // A send after the primary is gone fails; the disconnect handler ends the worker.
    if (process.connected) process.send?.(message, undefined, {}, () => undefined);
  },
  onMessage(listener) {
    process.on('message', (message: unknown) => {
      if (isMaildirdMessage(message)) listener(message as PrimaryMessage);
    });
  },
  onDisconnect(listener) {
    process.on('disconnect', listener);
  },
  disconnect() {
    // cluster's own disconnect: a bare process.disconnect() makes node:cluster
    // end the worker at once with exit code 0, taking serve's exit code away.
    if (process.connected) cluster.worker?.disconnect();
  },
};

export class WorkerRole implements ServeRole {
  readonly recoversAtStart = false;
  readonly runsSweeper = false;
  readonly throttle: ClusterThrottle;
  #loginDelay: ClusterLoginDelay | undefined;
  readonly #channel: Channel;
  readonly #pending = new Map<number, (refusal: GateRefusal | undefined) => void>();
  readonly #stopListeners: ((how: 'stop' | 'stop-now') => void)[] = [];
  #metrics: ServerMetrics | undefined;
  #nextId = 0;

  constructor(channel: Channel = processChannel) {
    this.#channel = channel;
    this.throttle = new ClusterThrottle((event) => channel.send(event));
    channel.onMessage((message) => this.#onMessage(message));
  }

  startsFrontend(name: string): boolean {
    return name !== 'http';
  }

  loginDelay(seconds: number): ClusterLoginDelay {
    this.#loginDelay ??= new ClusterLoginDelay((event) => this.#channel.send(event), { seconds });
    return this.#loginDelay;
  }

  connectionGate(server: string): ConnectionGate {
    return {
      admit: (remote) =>
        new Promise<GateRefusal | undefined>((resolve) => {
          const id = ++this.#nextId;
          this.#pending.set(id, resolve);
          this.#channel.send({ maildird: 'admit', id, server, remote });
        }),
      release: (remote) => this.#channel.send({ maildird: 'release', server, remote }),
    };
  }

  async prepare(parts: { readonly metrics: ServerMetrics }): Promise<readonly BoundListener[]> {
    this.#metrics = parts.metrics;
    return [];
  }

  remoteListeners(): [] {
    return [];
  }

  announce(bound: readonly BoundListener[]): boolean {
    this.#channel.send({ maildird: 'listening', bound });
    return false;
  }

  /** SIGHUP comes from the primary (or the operator) straight to this process's own handler. */
  hangup(): void {}

  async stopOthers(): Promise<void> {}

  /**
   * The stop signal of a worker. SIGINT is ignored: Ctrl-C in a terminal
   * reaches every process of the group, and the primary decides. The first
   * stop request (the primary's `stop`, or SIGTERM: systemd sends it to the
   * whole group too) starts a graceful stop; more of them change nothing.
   * `stop-now`, or the primary vanishing, ends the process at once: a
   * session cut short deletes nothing (DESIGN invariant 2), a message is
   * acknowledged only once durable.
   */
  stopSignal(): ShutdownSignals {
    let resolveReceived: (signal: 'SIGTERM' | 'SIGINT') => void = () => {};
    const received = new Promise<'SIGTERM' | 'SIGINT'>((resolve) => {
      resolveReceived = resolve;
    });
    const ignore = (): void => {};
    const onTerm = (): void => resolveReceived('SIGTERM');
    process.on('SIGINT', ignore);
    process.on('SIGTERM', onTerm);
    this.#stopListeners.push((how) => {
      if (how === 'stop') resolveReceived('SIGTERM');
      else process.exit(EXIT.forcedShutdown);
    });
    let isDone = false;
    this.#channel.onDisconnect(() => {
      if (!isDone) process.exit(EXIT.forcedShutdown);
    });
    const channel = this.#channel;
    return {
      received,
      dispose() {
        process.off('SIGINT', ignore);
        process.off('SIGTERM', onTerm);
        // Stopped (or failed to start): let go of the channel, which would
        // otherwise keep this process alive; the exit code is serve's.
        isDone = true;
        channel.disconnect();
      },
    };
  }

  #onMessage(message: PrimaryMessage): void {
    switch (message.maildird) {
      case 'admitted': {
        const resolve = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        resolve?.(message.refusal ?? undefined);
        return;
      }
      case 'throttle':
        this.throttle.applyRemote(message);
        return;
      case 'login':
        this.#loginDelay?.applyRemote(message);
        return;
      case 'metrics':
        this.#channel.send({ maildird: 'metrics-page', id: message.id, page: this.#metrics?.render() ?? '' });
        return;
      case 'stop':
      case 'stop-now':
        for (const listener of this.#stopListeners) listener(message.maildird);
        return;
      default:
        return;
    }
  }
}
