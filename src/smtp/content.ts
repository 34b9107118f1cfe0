/**
 * The message content between smtp-server's DATA stream (or stdin) and the
 * store: checked chunk by chunk by a DataInspector, never held whole
 * (STYLE.md 4).
 *
 * smtp-server answers DATA only after its stream ended; a stream destroyed
 * early makes it answer at once, while the client is still sending. So the
 * source is read with `destroyOnReturn: false`, and whatever the consumer
 * left unread is drained (still inspected, so a violation in an unread tail
 * is found) before anyone replies.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { DataInspector } from './data-inspector.js';

export class InspectedContent implements AsyncIterable<Buffer> {
  readonly #source: Readable;
  readonly #inspector: DataInspector;
  #started = false;
  #sourceError: unknown;

  constructor(source: Readable, inspector: DataInspector) {
    this.#source = source;
    this.#inspector = inspector;
  }

  /** The source failed (the client went away mid-message). */
  get sourceError(): unknown {
    return this.#sourceError;
  }

  /** One pass only: a store consumes its content exactly once. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.#started) throw new Error('message content can be read only once');
    this.#started = true;
    return this.#chunks();
  }

  async *#chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of this.#source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        this.#inspector.update(chunk);
        yield chunk;
      }
    } catch (err) {
      if (this.#inspector.failure === undefined) this.#sourceError = err;
      throw err;
    }
    this.#inspector.end();
  }

  /**
   * Read what nobody read, through the inspector (violations only recorded),
   * until the source ends or closes. Never throws.
   */
  async drain(): Promise<void> {
    const source = this.#source;
    if (source.readableEnded || source.destroyed) {
      this.#finish();
      return;
    }
    try {
      for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        try {
          this.#inspector.update(chunk);
        } catch {
          // recorded in inspector.failure
        }
      }
      this.#finish();
    } catch (err) {
      this.#sourceError ??= err;
    }
    if (!source.readableEnded && !source.closed) await once(source, 'close').catch(() => undefined);
  }

  #finish(): void {
    if (!this.#source.readableEnded) return;
    try {
      this.#inspector.end();
    } catch {
      // recorded in inspector.failure
    }
  }
}
