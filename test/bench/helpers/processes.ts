/**
 * The benchmark's processes: every child is tracked by PID and stopped by
 * PID (SIGTERM, then SIGKILL after a bound), also on error and on Ctrl-C;
 * nothing is ever killed by name. /proc readings for peak memory and CPU.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const running = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];
let isHooked = false;

/** Run `fn` (synchronously) when the process exits, after every child is killed. */
export function atExit(fn: () => void): void {
  hookExit();
  cleanups.push(fn);
}

/** Kill whatever is still running, synchronously (for process exit and signals). */
function killAllNow(): void {
  for (const child of running) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function hookExit(): void {
  if (isHooked) return;
  isHooked = true;
  process.on('exit', () => {
    killAllNow();
    for (const fn of cleanups.splice(0)) fn();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAllNow();
      process.exit(130);
    });
  }
}

export function startProcess(command: string, args: readonly string[], stdio: StdioOptions): ChildProcess {
  hookExit();
  const child = spawn(command, args, { stdio });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL the process and whatever it left behind. */
export async function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || hasExited(child)) return;
  const left = descendants(pid);
  child.kill('SIGTERM');
  if (await waitExit(child, graceMs)) return;
  for (const p of [...descendants(pid), ...left, pid]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitExit(child, 5_000);
}

/** Child PIDs of `pid`, recursively (/proc/PID/task/TID/children of every thread). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  for (let guard = 0; stack.length > 0 && guard < 100_000; guard++) {
    const p = stack.pop() as number;
    let tids: string[];
    try {
      tids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/);
    } catch {
      continue;
    }
    for (const t of tids) {
      const child = Number(t);
      if (child > 0) {
        out.push(child);
        stack.push(child);
      }
    }
  }
  return out;
}

function statusField(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** CPU seconds of a process; with `withReaped`, plus its waited-for children (cutime, cstime). */
function cpuSeconds(pid: number, withReaped: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11..14] are utime, stime, cutime, cstime (proc(5) fields 14-17), in clock ticks (100 Hz).
    const ticks = Number(fields[11]) + Number(fields[12]) + (withReaped ? Number(fields[13]) + Number(fields[14]) : 0);
    return ticks / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by a process tree: live members plus the children its root has reaped. */
export function treeCpuSeconds(pid: number): number {
  let total = cpuSeconds(pid, true);
  for (const child of descendants(pid)) total += cpuSeconds(child, false);
  return total;
}

/** Reset a process's VmHWM to its current RSS (proc(5), clear_refs value 5). */
export function resetPeakRss(pid: number): void {
  try {
    // Best effort: needs the same user or root.
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // the figure then covers the process's whole life
  }
}

export function peakRss(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/**
 * Samples the summed RSS of a process tree every `everyMs` (Dovecot runs
 * one process per session, whose VmHWM dies with it); shared pages count
 * once per process, so the sum overstates a multi-process server a little.
 */
export class TreeRssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #peak = 0;

  constructor(pid: number, everyMs = 100) {
    this.#pid = pid;
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    let total = statusField(this.#pid, 'VmRSS');
    for (const child of descendants(this.#pid)) total += statusField(child, 'VmRSS');
    if (total > this.#peak) this.#peak = total;
  }

  /** Stop sampling; the peak summed RSS in bytes. */
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.#peak;
  }
}

/** Resolves once `port` answers with a POP3 greeting; rejects after `ms` or when `child` exits. */
export async function waitForGreeting(port: number, child: ChildProcess, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (hasExited(child)) throw new Error(`server exited (code ${String(child.exitCode)}) before answering on port ${port}`);
    if (await greets(port)) return;
    await new Promise((r) => setTimeout(r, Math.min(50 * (attempt + 1), 250)));
  }
  throw new Error(`no POP3 greeting on port ${port} within ${ms} ms`);
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => {
      socket.end('QUIT\r\n');
      done(data.toString('latin1').startsWith('+OK'));
    });
  });
}

/** A free TCP port on 127.0.0.1 (bound, then released for the server to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
