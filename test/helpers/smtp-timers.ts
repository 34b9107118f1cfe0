/**
 * Timers that fire only when a test says so (COMMON rules: no timed
 * assertions). Implements src/protocol/timers.ts's Timers.
 */
import type { TimerHandle, Timers } from '../../src/protocol/timers.js';

interface Entry {
  readonly name: string;
  readonly ms: number;
  readonly fire: () => void;
  done: boolean;
}

export class ManualTimers implements Timers {
  readonly #entries: Entry[] = [];
  #waiters: { name: string; resolve: () => void }[] = [];

  start(name: string, ms: number, fire: () => void): TimerHandle {
    const entry: Entry = { name, ms, fire, done: false };
    this.#entries.push(entry);
    const waiters = this.#waiters.filter((w) => w.name === name);
    this.#waiters = this.#waiters.filter((w) => w.name !== name);
    for (const w of waiters) w.resolve();
    return {
      cancel: () => {
        entry.done = true;
      },
    };
  }

  /** Running timers called `name`, with their durations. */
  pending(name: string): number[] {
    return this.#entries.filter((e) => !e.done && e.name === name).map((e) => e.ms);
  }

  /** Fire every running timer called `name`; returns how many fired. */
  fire(name: string): number {
    const due = this.#entries.filter((e) => !e.done && e.name === name);
    for (const e of due) {
      e.done = true;
      e.fire();
    }
    return due.length;
  }

  /** Resolves once a timer called `name` is running (at once if one is). */
  async running(name: string): Promise<void> {
    if (this.pending(name).length > 0) return;
    await new Promise<void>((resolve) => this.#waiters.push({ name, resolve }));
  }
}
