/**
 * Plays one fuzz session over a real loopback socket: the bytes go out in
 * randomly split (or coalesced) writes, optionally cut off by a disconnect
 * at a random point, and the session ends when the socket closes. Shared
 * by the POP3 and SMTP session fuzzers and the stress runs.
 */
import { connect, type Socket } from 'node:net';

export interface SessionPlan {
  /** Every byte the client would send, in order. */
  readonly bytes: Buffer;
  /** Write boundaries: lengths of consecutive writes (their sum may be less than bytes.length when cut). */
  readonly writes: readonly number[];
  /** Yield to the event loop between writes (split segments) or not (coalesced). */
  readonly yieldBetween: boolean;
  /**
   * 'end': FIN after the last write; 'destroy': abort right after the last
   * write; 'wait': keep our side open until the server closes (after QUIT).
   */
  readonly finish: 'end' | 'destroy' | 'wait';
  /** Wait for this many reply lines before the first write (the greeting). */
  readonly waitGreeting: boolean;
}

export interface SessionResult {
  readonly sent: number;
  readonly received: number;
  /** The received text (latin1), for the caller's checks: all of it, or its first and last 64 reads when longer. */
  readonly output: string;
  /** The safety bound hit: the socket was destroyed by us after `boundMs`. */
  readonly isHung: boolean;
  readonly error: string | undefined;
}

/** A session plan from a PRNG: `rand()` in [0, 1). */
export function planWrites(bytes: Buffer, rand: () => number): SessionPlan {
  const isCut = rand() < 0.2;
  const total = isCut ? Math.floor(rand() * (bytes.length + 1)) : bytes.length;
  const writes: number[] = [];
  const mode = rand();
  let left = total;
  while (left > 0) {
    // Coalesced: one write; tiny: 1-3 bytes; mixed: up to 64.
    const size = mode < 0.3 ? left : mode < 0.5 ? 1 + Math.floor(rand() * 3) : 1 + Math.floor(rand() * 64);
    const n = Math.min(left, size);
    writes.push(n);
    left -= n;
  }
  return { bytes, writes, yieldBetween: rand() < 0.7, finish: isCut && rand() < 0.5 ? 'destroy' : 'end', waitGreeting: rand() < 0.5 };
}

/**
 * Run one plan against 127.0.0.1:port. Never rejects: a socket error (the
 * server dropping a garbage session) is part of the result.
 */
export function runSession(port: number, plan: SessionPlan, boundMs: number): Promise<SessionResult> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ port, host: '127.0.0.1' });
    const head: Buffer[] = [];
    const tail: Buffer[] = [];
    let received = 0;
    let sent = 0;
    let error: string | undefined;
    let isHung = false;
    let isDone = false;
    const bound = setTimeout(() => {
      isHung = true;
      socket.destroy();
    }, boundMs);
    bound.unref();
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (head.length < 64) head.push(d);
      else {
        tail.push(d);
        if (tail.length > 64) tail.shift();
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on('close', () => {
      clearTimeout(bound);
      isDone = true;
      resolve({ sent, received, output: Buffer.concat([...head, ...tail]).toString('latin1'), isHung, error });
    });
    const greeted = new Promise<void>((ok) => {
      if (!plan.waitGreeting) return ok();
      socket.once('data', () => ok());
      socket.once('close', () => ok());
    });
    socket.once('connect', async () => {
      await greeted;
      let at = 0;
      for (const n of plan.writes) {
        if (isDone || socket.destroyed) return;
        socket.write(plan.bytes.subarray(at, at + n));
        at += n;
        sent += n;
        if (plan.yieldBetween) await new Promise((r) => setImmediate(r));
      }
      if (isDone || socket.destroyed) return;
      if (plan.finish === 'destroy') socket.destroy();
      else if (plan.finish === 'end') socket.end();
    });
  });
}

/** Run `count` sessions, at most `concurrency` at a time; `make(i)` builds session i. */
export async function runPool<T>(count: number, concurrency: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      results[i] = await make(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/** Random pick. */
export function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}
