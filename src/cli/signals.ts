/**
 * SIGINT/SIGTERM for `maildird serve` (the only place maildird installs
 * signal handlers): the first signal starts a graceful shutdown; a second
 * one, while that is still running, ends the process at once. Nothing is
 * lost either way: a POP3 session cut short deletes nothing (DESIGN
 * invariant 2), and an SMTP message is acknowledged only once it is on disk.
 */
import type { Writable } from 'node:stream';
import { EXIT } from './exit-codes.js';

export type ShutdownSignal = 'SIGINT' | 'SIGTERM';
const SIGNALS: readonly ShutdownSignal[] = ['SIGINT', 'SIGTERM'];

export interface ShutdownSignals {
  /** Resolves with the first signal received. */
  readonly received: Promise<ShutdownSignal>;
  /** Remove the handlers (after the shutdown finished). */
  dispose(): void;
}

export function listenForShutdown(stderr: Writable): ShutdownSignals {
  let count = 0;
  let resolveReceived: (signal: ShutdownSignal) => void = () => {};
  const received = new Promise<ShutdownSignal>((resolve) => {
    resolveReceived = resolve;
  });
  const onSignal = (signal: ShutdownSignal) => {
    count += 1;
    if (count === 1) {
      resolveReceived(signal);
      return;
    }
    stderr.write(`maildird: ${signal} again, stopping now\n`);
    process.exit(EXIT.forcedShutdown);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return {
    received,
    dispose() {
      for (const signal of SIGNALS) process.off(signal, onSignal);
    },
  };
}
