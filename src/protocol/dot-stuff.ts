/**
 * Dot-stuffing for multi-line replies (RFC 1939 section 3; the same rule as
 * SMTP DATA, RFC 5321 section 4.5.2): every line that starts with "." gets
 * one more "." in front, and the reply ends with a line holding only ".".
 *
 * The input is a message already in wire form (CRLF line ends, storage's
 * job, DESIGN.md "Wire size"). The stuffer is incremental: it keeps whether
 * the previous chunk ended at a line start, so a "." that is the first byte
 * of a chunk is stuffed when the chunk before ended with LF. A chunk with
 * no line starting with "." is passed through without a copy.
 */
import { Transform, type TransformCallback } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.', 'latin1');
const DOT_BUF = Buffer.from('.', 'latin1');
const TERMINATOR = Buffer.from('.\r\n', 'latin1');
const CRLF_TERMINATOR = Buffer.from('\r\n.\r\n', 'latin1');

export class DotStuffer {
  #atLineStart = true;
  #last = -1;
  #beforeLast = -1;
  #inputBytes = 0;

  /** Octets taken so far, stuffing excluded: what STAT/LIST promised (DESIGN.md invariant 5). */
  get inputBytes(): number {
    return this.#inputBytes;
  }

  /** True when the input so far ends with CRLF (or is empty): the terminator can follow directly. */
  get endsWithCrlf(): boolean {
    return this.#inputBytes === 0 || (this.#last === LF && this.#beforeLast === CR);
  }

  /** Stuff one chunk. Returns the chunk itself when nothing needs stuffing. */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    this.#inputBytes += chunk.length;
    const startsStuffed = this.#atLineStart && chunk[0] === DOT;
    let hit = chunk.indexOf(LF_DOT);
    this.#remember(chunk);
    if (!startsStuffed && hit === -1) return chunk;
    const pieces: Buffer[] = [];
    let from = 0;
    if (startsStuffed) pieces.push(DOT_BUF);
    while (hit !== -1) {
      // Keep "...\n" then add the extra "."; the original "." follows in the next piece.
      pieces.push(chunk.subarray(from, hit + 1), DOT_BUF);
      from = hit + 1;
      hit = chunk.indexOf(LF_DOT, from);
    }
    pieces.push(chunk.subarray(from));
    return Buffer.concat(pieces);
  }

  /**
   * The terminating ".CRLF". When the input did not end with CRLF (a store
   * breaking its wire-form contract) a CRLF is put first, or the client
   * would never see the end of the reply.
   */
  terminator(): Buffer {
    return this.endsWithCrlf ? TERMINATOR : CRLF_TERMINATOR;
  }

  #remember(chunk: Buffer): void {
    const n = chunk.length;
    this.#beforeLast = n >= 2 ? (chunk[n - 2] as number) : this.#last;
    this.#last = chunk[n - 1] as number;
    this.#atLineStart = this.#last === LF;
  }
}

/** Stuff a whole message held in memory and append the terminator. */
export function dotStuffMessage(message: Buffer): Buffer {
  const stuffer = new DotStuffer();
  const body = stuffer.push(message);
  return Buffer.concat([body, stuffer.terminator()]);
}

/** A Transform that stuffs its input and, at the end, writes the terminator. */
export function createDotStuffTransform(): Transform {
  const stuffer = new DotStuffer();
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      callback(null, stuffer.push(chunk));
    },
    flush(callback: TransformCallback): void {
      callback(null, stuffer.terminator());
    },
  });
}
