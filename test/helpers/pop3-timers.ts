/**
 * Timers a test fires by hand (src/protocol/timers.ts), so timeout tests
 * assert what happens when a limit passes without sleeping.
 */
import type { TimerHandle, Timers } from '../../src/protocol/timers.ts';

interface Armed {
  readonly name: string;
  readonly ms: number;
  readonly fire: () => void;
  active: boolean;
}

export class ManualTimers implements Timers {
  readonly #armed: Armed[] = [];
  readonly #waiters: (() => void)[] = [];
  /** Every timer ever started, by name, in order: lets a test check a timer was not re-armed. */
  readonly started: string[] = [];

  start(name: string, ms: number, fire: () => void): TimerHandle {
    const timer: Armed = { name, ms, fire, active: true };
    this.#armed.push(timer);
    this.started.push(name);
    for (const waiter of this.#waiters.splice(0)) waiter();
    return {
      cancel: () => {
        timer.active = false;
      },
    };
  }

  /** The duration asked for by the active timers with this name, in order. */
  durations(name: string): number[] {
    return this.#armed.filter((t) => t.active && t.name === name).map((t) => t.ms);
  }

  /** Active timers with this name. */
  active(name: string): number {
    return this.#armed.filter((t) => t.active && t.name === name).length;
  }

  /** Resolve once a timer with this name is active. */
  async waitFor(name: string): Promise<void> {
    while (this.active(name) === 0) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Fire the active timers with this name; returns how many fired. */
  fire(name: string): number {
    const due = this.#armed.filter((t) => t.active && t.name === name);
    for (const t of due) {
      t.active = false;
      t.fire();
    }
    return due.length;
  }
}
