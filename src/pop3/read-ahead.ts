/**
 * Read-ahead for RETR. A client downloading its mail asks for message after
 * message (RETR 1, RETR 2... or many RETRs pipelined); waiting for storage
 * between them leaves the client idle. So when a RETR is served, the next
 * messages likely to be asked for (the RETRs already pipelined in the input
 * buffer, and the next few numbers) are read concurrently, within a small
 * budget, and the RETR that asks for one finds it in memory.
 *
 * Only small messages are read ahead (large ones stream with
 * backpressure). Read-ahead never changes what a client sees: a message is
 * marked retrieved only by the RETR that sends it, a read that fails is
 * reported by that RETR as if it had just been tried, and everything read
 * ahead is dropped (and waited for) before UPDATE and at the end of the
 * session.
 */
import type { Readable } from 'node:stream';
import type { FramedMessage, Maildrop } from '../storage/store.js';

export interface ReadAheadLimits {
  /** Most messages held or in flight. */
  readonly maxMessages: number;
  /** Most wire octets held or in flight. */
  readonly maxBytes: number;
  /** Only messages up to this wire size are read ahead. */
  readonly maxMessageBytes: number;
}

export class ReadAhead {
  readonly #maildrop: Maildrop;
  readonly #limits: ReadAheadLimits;
  readonly #pending = new Map<number, Promise<FramedMessage>>();
  #bytes = 0;

  constructor(maildrop: Maildrop, limits: ReadAheadLimits) {
    this.#maildrop = maildrop;
    this.#limits = limits;
  }

  /** Messages held or in flight. */
  get size(): number {
    return this.#pending.size;
  }

  /** Message `index`, framed, if it was read ahead (it is then forgotten), else undefined. */
  take(index: number): Promise<FramedMessage> | undefined {
    const pending = this.#pending.get(index);
    if (pending === undefined) return undefined;
    this.#pending.delete(index);
    this.#bytes -= this.#sizeOf(index);
    return pending;
  }

  /** Start reading these messages, skipping large ones, ones already read, and anything past the budget. */
  start(indexes: Iterable<number>): void {
    for (const index of indexes) {
      if (this.#pending.has(index)) continue;
      const size = this.#sizeOf(index);
      if (size < 0 || size > this.#limits.maxMessageBytes) continue;
      if (this.#pending.size >= this.#limits.maxMessages || this.#bytes + size > this.#limits.maxBytes) return;
      const reading = this.#maildrop.readMessage(index);
      // Handled here so a read nobody takes never becomes an unhandled rejection;
      // a RETR that takes it still sees the error.
      reading.catch(() => undefined);
      this.#pending.set(index, reading);
      this.#bytes += size;
    }
  }

  /** Forget everything, after the reads in flight have settled (no file is touched once this resolves). */
  async clear(): Promise<void> {
    const inFlight = [...this.#pending.values()];
    this.#pending.clear();
    this.#bytes = 0;
    await Promise.allSettled(inFlight);
  }

  #sizeOf(index: number): number {
    return this.#maildrop.messages[index]?.size ?? -1;
  }
}

/** Everything a stream gives, as one Buffer (the stores hand small messages over in one chunk). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    length += chunk.length;
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
}
