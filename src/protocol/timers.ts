/**
 * The timers protocol code runs (idle, line deadline, drain, close), behind
 * an interface so tests can fire them by hand instead of sleeping
 * (COMMON rules: no timed assertions; inject clocks).
 */

export interface TimerHandle {
  /** Stop the timer; harmless after it fired. */
  cancel(): void;
}

export interface Timers {
  /**
   * Call `fire` once after `ms` milliseconds. `name` says which limit this
   * is ('idle', 'line', 'drain', 'close', 'handshake'): tests wait for and
   * fire timers by name.
   */
  start(name: string, ms: number, fire: () => void): TimerHandle;
}

/** Node's own timers. */
export const realTimers: Timers = {
  start(_name: string, ms: number, fire: () => void): TimerHandle {
    const timer = setTimeout(fire, ms);
    return { cancel: () => clearTimeout(timer) };
  },
};
