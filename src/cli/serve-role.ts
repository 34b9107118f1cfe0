/**
 * What a `maildird serve` process is for, as the few decisions that differ
 * between its three forms: one process (the `workers` key at 1: everything,
 * exactly as before the key existed), a cluster primary (HTTP, the Trash
 * sweeper, the workers and the state they share), and a cluster worker
 * (POP3 and SMTP/LMTP on listeners the primary shares with it). serve.ts
 * runs the same code for all three and asks the role at each of these
 * points; src/cli/cluster holds the primary and worker roles.
 */
import type { LoginDelay } from '../auth/login-delay.js';
import type { LoginThrottle } from '../auth/throttle.js';
import type { ServerMetrics } from '../http/server-metrics.js';
import type { Logger } from '../log/logger.js';
import type { ConnectionGate } from '../protocol/connection-gate.js';
import type { BoundListener } from './frontends.js';
import type { ListenerState } from './health.js';

export interface ServeRole {
  /** Does this process start the front-end `name` (`pop3`, `smtp`, `http`)? */
  startsFrontend(name: string): boolean;
  /** Roll leftover batch journals forward when the store opens (once per tree, before any session). */
  readonly recoversAtStart: boolean;
  /** Run the Trash sweeper (once per tree). */
  readonly runsSweeper: boolean;
  /** Where a protocol server (`pop3`) counts its connection limits; undefined: the server counts its own. */
  connectionGate(server: string): ConnectionGate | undefined;
  /** One failed-login throttle for every front-end of the process; undefined: each server keeps its own. */
  readonly throttle: LoginThrottle | undefined;
  /** POP3 LOGIN-DELAY bookkeeping shared with the other processes; undefined: the POP3 server keeps its own. */
  loginDelay(seconds: number): LoginDelay | undefined;
  /**
   * Before this process's front-ends start: what it needs of the others.
   * Resolves with the listeners other processes serve (the primary forks
   * its workers and waits until they listen).
   */
  prepare(parts: { readonly metrics: ServerMetrics; readonly logger: Logger }): Promise<readonly BoundListener[]>;
  /** Listeners served by other processes, for /healthz. */
  remoteListeners(): readonly ListenerState[];
  /** This process's front-ends listen on `bound`. True: serve prints the summary (a worker reports to its primary instead). */
  announce(bound: readonly BoundListener[]): boolean;
  /** SIGHUP reached this process: pass it on. */
  hangup(): void;
  /** After the stop signal, before this process's own front-ends close: stop the others (the primary's workers). */
  stopOthers(): Promise<void>;
}

/** One process serving everything: today's `maildird serve`. */
export const SINGLE_PROCESS: ServeRole = Object.freeze({
  startsFrontend: () => true,
  recoversAtStart: true,
  runsSweeper: true,
  connectionGate: () => undefined,
  throttle: undefined,
  loginDelay: () => undefined,
  prepare: async () => [],
  remoteListeners: () => [],
  announce: () => true,
  hangup: () => undefined,
  stopOthers: async () => undefined,
});
