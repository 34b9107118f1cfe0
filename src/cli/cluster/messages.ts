/**
 * What the primary and its workers say to each other over the node:cluster
 * IPC channel (`maildird serve` with `workers` > 1). Every message is a
 * plain object with a `maildird` tag, so nothing else on the channel (the
 * cluster module's own messages) is mistaken for one.
 */
import type { GateRefusal } from '../../protocol/connection-gate.js';
import type { BoundListener } from '../frontends.js';

/** Worker -> primary. */
export type WorkerMessage =
  /** Every listener of the worker is up: where they are. */
  | { readonly maildird: 'listening'; readonly bound: readonly BoundListener[] }
  /** A new connection on `server` from `remote`: may it stay? Answered by `admitted` with the same id. */
  | { readonly maildird: 'admit'; readonly id: number; readonly server: string; readonly remote: string }
  /** A connection counted by `admit` closed. */
  | { readonly maildird: 'release'; readonly server: string; readonly remote: string }
  /** A login failed or succeeded: the other workers count it too (src/auth/throttle.ts). */
  | ThrottleEvent
  /** A POP3 login went through: the other workers hold its LOGIN-DELAY too (src/auth/login-delay.ts). */
  | LoginDelayEvent
  /** The worker's /metrics page, answering `metrics` with the same id. */
  | { readonly maildird: 'metrics-page'; readonly id: number; readonly page: string };

/** Primary -> worker. */
export type PrimaryMessage =
  | { readonly maildird: 'admitted'; readonly id: number; readonly refusal: GateRefusal | null }
  | ThrottleEvent
  | LoginDelayEvent
  | { readonly maildird: 'metrics'; readonly id: number }
  /** Stop gracefully (as SIGTERM does a single process). */
  | { readonly maildird: 'stop' }
  /** Stop at once: the operator asked twice. */
  | { readonly maildird: 'stop-now' };

export interface ThrottleEvent {
  readonly maildird: 'throttle';
  readonly result: 'failure' | 'success';
  readonly address: string;
  readonly user: string | null;
}

export interface LoginDelayEvent {
  readonly maildird: 'login';
  readonly user: string;
}

/** True for a message of ours (any direction); the cluster module's internal messages are not. */
export function isMaildirdMessage(message: unknown): message is { readonly maildird: string } {
  return typeof message === 'object' && message !== null && typeof (message as { maildird?: unknown }).maildird === 'string';
}
