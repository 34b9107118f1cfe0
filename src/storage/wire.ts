/**
 * Stored form <-> wire form, shared by both stores and the front-ends.
 *
 * Stored form (DESIGN.md "Stored bytes"): what a Maildir file holds. maildird
 * writes LF line ends; files from other MDAs may hold CRLF or a mix. A lone CR
 * (not followed by LF) is data, never a line end.
 *
 * Wire form (DESIGN.md "Wire size", RFC 1939 section 3 and RFC 5321 section
 * 2.3.8: lines end in CRLF): every LF not already preceded by CR becomes CRLF,
 * and a CRLF is added when the last line has no line end. Dot-stuffing is NOT
 * done here (it is the protocol's job and is not counted in sizes). The empty
 * file is the empty wire form (size 0).
 *
 * Everything here works on chunks with Buffer.indexOf loops (memchr speed),
 * never per-byte JS loops or string replaces, and carries the one byte of
 * state a chunk edge needs: whether the previous chunk ended in CR. Each
 * streaming helper has a one-shot Buffer twin for small messages, and the
 * tests prove both give the same bytes at every chunk split.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { FramedMessage } from './store.js';

const LF = 0x0a;
const CR = 0x0d;
const CRLF_BYTES = Buffer.from('\r\n');
const CR_BYTE = Buffer.from('\r');
const EMPTY = Buffer.alloc(0);
/** toWireBuffer's string path: files without CR up to this size. */
const STRING_PATH_MAX_BYTES = 256 * 1024;
const ALL_LF = /\n/g;

/**
 * Copy src[from, to) into out at `at`; returns the count. A bare Uint8Array
 * view plus TypedArray#set measured about twice as fast as Buffer#copy (which
 * builds a Buffer view per call) on 72-byte lines, and far faster than
 * copyWithin.
 */
function copyRun(src: Buffer, out: Buffer, at: number, from: number, to: number): number {
  out.set(new Uint8Array(src.buffer, src.byteOffset + from, to - from), at);
  return to - from;
}

/** View any Uint8Array chunk as a Buffer without copying. */
function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * Wire size of a whole stored file (DESIGN.md "Wire size"): its length, plus
 * one for every LF not preceded by CR, plus two when it is non-empty and does
 * not end in LF. This is what STAT/LIST report and what `W=` records.
 */
export function wireSize(stored: Uint8Array): number {
  const counter = new WireSizeCounter();
  counter.update(stored);
  return counter.wireSize;
}

/**
 * Counts stored and wire sizes over a stream of stored chunks, for files
 * whose name carries no `W=` and for delivery naming files
 * `,S=<stored>,W=<wire>` in the same pass that writes them.
 */
export class WireSizeCounter {
  #stored = 0;
  #bareLf = 0;
  /** Last byte seen, -1 before any. */
  #last = -1;

  update(chunk: Uint8Array): void {
    const buf = asBuffer(chunk);
    const len = buf.length;
    if (len === 0) return;
    let i = buf.indexOf(LF);
    while (i !== -1) {
      const afterCr = i === 0 ? this.#last === CR : buf[i - 1] === CR;
      if (!afterCr) this.#bareLf++;
      i = buf.indexOf(LF, i + 1);
    }
    this.#stored += len;
    this.#last = buf[len - 1] ?? -1;
  }

  /** Bytes seen so far: the stored size (`S=`). */
  get storedSize(): number {
    return this.#stored;
  }

  /** Wire size of the bytes seen so far, as if they were the whole file (`W=`). */
  get wireSize(): number {
    const finalCrlf = this.#last !== -1 && this.#last !== LF ? 2 : 0;
    return this.#stored + this.#bareLf + finalCrlf;
  }
}

/**
 * Incremental stored -> wire converter, the core of toWire() and
 * topOfMessage(). Pure: feed chunks in order, then call end() once.
 */
export class WireEncoder {
  /** Last byte of everything encoded so far, -1 before any. */
  #last = -1;
  #in = 0;
  #out = 0;

  /**
   * Wire bytes for the next stored chunk. Returns `chunk` itself when it
   * holds no bare LF (a CRLF-stored file costs no copy); never keeps bytes
   * back, because a CR at a chunk end needs no lookahead: the encoder only
   * asks "was the byte before this LF a CR", and remembers the last byte.
   */
  encode(input: Uint8Array): Buffer {
    const chunk = asBuffer(input);
    const len = chunk.length;
    if (len === 0) return chunk;
    // Pass 1: count bare LFs so the output is allocated once, exactly.
    let bare = 0;
    let i = chunk.indexOf(LF);
    while (i !== -1) {
      if (i === 0 ? this.#last !== CR : chunk[i - 1] !== CR) bare++;
      i = chunk.indexOf(LF, i + 1);
    }
    let out: Buffer;
    if (bare === 0) {
      out = chunk;
    } else {
      // Pass 2: copy line runs, writing CR before each bare LF.
      out = Buffer.allocUnsafe(len + bare);
      let from = 0;
      let at = 0;
      i = chunk.indexOf(LF);
      while (i !== -1) {
        if (i === 0 ? this.#last !== CR : chunk[i - 1] !== CR) {
          at += copyRun(chunk, out, at, from, i);
          out[at++] = CR;
          from = i; // the LF itself is copied with the next run
        }
        i = chunk.indexOf(LF, i + 1);
      }
      copyRun(chunk, out, at, from, len);
    }
    this.#last = chunk[len - 1] ?? -1;
    this.#in += len;
    this.#out += out.length;
    return out;
  }

  /** The final CRLF when the last line had no line end; empty otherwise (and for an empty file). */
  end(): Buffer {
    if (this.#last === -1 || this.#last === LF) return EMPTY;
    this.#last = LF;
    this.#out += 2;
    return CRLF_BYTES;
  }

  /** Stored bytes encoded so far. */
  get bytesIn(): number {
    return this.#in;
  }

  /** Wire bytes produced so far (after end(): the message's true wire size). */
  get bytesOut(): number {
    return this.#out;
  }
}

/**
 * Whole-message wire form in one allocation, for small messages (RETR reads
 * them with one read). May return `stored` itself when it is already in wire
 * form; callers must not modify the result.
 */
export function toWireBuffer(stored: Uint8Array): Buffer {
  const buf = asBuffer(stored);
  if (buf.length > 0 && buf.length <= STRING_PATH_MAX_BYTES && buf.indexOf(CR) === -1) {
    // No CR at all (what maildird itself stores): every LF is bare. V8's
    // global replace of a one-character pattern runs in C++ over a one-byte
    // string: on this machine a 20 KB message took 22 us instead of 37 us
    // through the copyRun loop below (2 KB: 3.2 vs 4.6 us), found profiling
    // npm run bench:pop3. latin1 maps each byte to one char and back, so
    // every byte survives. Near 512 KB the loop is faster again.
    let text = buf.toString('latin1').replace(ALL_LF, '\r\n');
    if (buf[buf.length - 1] !== LF) text += '\r\n';
    return Buffer.from(text, 'latin1');
  }
  const encoder = new WireEncoder();
  const body = encoder.encode(stored);
  const tail = encoder.end();
  return tail.length === 0 ? body : Buffer.concat([body, tail], body.length + tail.length);
}

const DOT = 0x2e;
const ALL_LF_DOT = /\n\./g;

/**
 * Stored bytes -> a complete multi-line reply body in ONE buffer: wire form
 * (bare LF -> CRLF, final CRLF added), every line that starts with "."
 * stuffed with one more (RFC 1939 section 3, RFC 5321 section 4.5.2), then
 * the terminating `.CRLF`. The same bytes as dot-stuffing toWireBuffer's
 * result and appending the terminator, in one pass instead of two passes
 * and three buffers (RETR of a small message, profiled under bench:pop3).
 */
export function toMultilineBuffer(stored: Uint8Array): FramedMessage {
  const buf = asBuffer(stored);
  const len = buf.length;
  if (len > 0 && len <= STRING_PATH_MAX_BYTES && buf.indexOf(CR) === -1) {
    // As in toWireBuffer: no CR, so every LF is bare, and V8's one-character
    // global replace over a one-byte string beats any JS loop. A line start
    // is the file's start or an LF, so "\n." finds every line to stuff.
    let text = buf.toString('latin1').replace(ALL_LF, '\r\n');
    if (buf[len - 1] !== LF) text += '\r\n';
    const wireSize = text.length;
    if (buf[0] === DOT) text = `.${text}`;
    if (text.indexOf('\n.') !== -1) text = text.replace(ALL_LF_DOT, '\n..');
    const out = Buffer.allocUnsafe(text.length + 3);
    out.write(text, 0, 'latin1');
    out[text.length] = DOT;
    out[text.length + 1] = CR;
    out[text.length + 2] = LF;
    return { bytes: out, wireSize };
  }
  // General case (CRs in the file, or large): one indexOf(LF) loop copying
  // line runs. Worst case every byte is a bare LF followed by ".": 3 bytes out.
  let lines = 0;
  let i = buf.indexOf(LF);
  while (i !== -1) {
    lines++;
    i = buf.indexOf(LF, i + 1);
  }
  const out = Buffer.allocUnsafe(len + 2 * lines + 3 + 3);
  let at = 0;
  let stuffed = 0;
  if (buf[0] === DOT) {
    out[at++] = DOT;
    stuffed++;
  }
  let from = 0;
  i = buf.indexOf(LF);
  while (i !== -1) {
    if (i === 0 || buf[i - 1] !== CR) {
      at += copyRun(buf, out, at, from, i);
      out[at++] = CR;
      out[at++] = LF;
    } else {
      at += copyRun(buf, out, at, from, i + 1);
    }
    from = i + 1;
    if (buf[from] === DOT) {
      out[at++] = DOT;
      stuffed++;
    }
    i = buf.indexOf(LF, from);
  }
  if (from < len) {
    at += copyRun(buf, out, at, from, len);
    out[at++] = CR;
    out[at++] = LF;
  }
  const wireSize = at - stuffed;
  out[at++] = DOT;
  out[at++] = CR;
  out[at++] = LF;
  return { bytes: out.subarray(0, at), wireSize };
}

/**
 * A Transform from stored bytes to wire bytes. `bytesOut` after 'end' is the
 * true wire size, so a reader can check a `W=` it trusted for the listing.
 */
export class ToWire extends Transform {
  readonly #encoder = new WireEncoder();

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const out = this.#encoder.encode(chunk);
    if (out.length > 0) this.push(out);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const tail = this.#encoder.end();
    if (tail.length > 0) this.push(tail);
    callback();
  }

  get bytesIn(): number {
    return this.#encoder.bytesIn;
  }

  get bytesOut(): number {
    return this.#encoder.bytesOut;
  }
}

/** Stored -> wire as a stream stage: `pipeline(fileStream, toWire(), dotStuff, socket)`. */
export function toWire(): ToWire {
  return new ToWire();
}

/** Stored -> wire over an async iterable of chunks (e.g. a file's read stream). */
export async function* toWireChunks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer, void, undefined> {
  const encoder = new WireEncoder();
  for await (const chunk of source) {
    const out = encoder.encode(chunk);
    if (out.length > 0) yield out;
  }
  const tail = encoder.end();
  if (tail.length > 0) yield tail;
}

/**
 * Finds where TOP output ends in stored bytes (RFC 1939 section 7, TOP: the
 * header, the blank line separating it from the body, then at most n body
 * lines). The header ends at the first empty line: `LF` or `CR LF` right
 * after a line end (or at the start of the file). A lone CR never ends a
 * line. A message with no blank line is all header: TOP sends it whole and
 * adds no separator, since a store never invents bytes the file does not
 * hold.
 */
export class TopCutter {
  readonly #bodyLines: number;
  #inHeader = true;
  /** Body lines still to send once the header is done. */
  #left: number;
  /** The current line so far (across chunks): 0 empty, 1 exactly "\r", 2 anything else. */
  #line: 0 | 1 | 2 = 0;
  #done = false;

  constructor(bodyLines: number) {
    if (!Number.isSafeInteger(bodyLines) || bodyLines < 0) {
      throw new RangeError(`bodyLines must be a non-negative integer, got ${bodyLines}`);
    }
    this.#bodyLines = bodyLines;
    this.#left = bodyLines;
  }

  /** True once the cut point was found: stop reading. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * How many leading bytes of `chunk` belong to the TOP output. When that is
   * less than the chunk, or exactly at the cut, `done` becomes true.
   */
  take(input: Uint8Array): number {
    if (this.#done) return 0;
    const chunk = asBuffer(input);
    const len = chunk.length;
    let pos = 0;
    if (this.#inHeader) {
      let lineStart = 0;
      let i = chunk.indexOf(LF);
      while (i !== -1) {
        if (this.#lineStateAt(chunk, lineStart, i) !== 2) {
          this.#inHeader = false;
          pos = i + 1;
          if (this.#bodyLines === 0) {
            this.#done = true;
            return pos;
          }
          break;
        }
        this.#line = 0;
        lineStart = i + 1;
        i = chunk.indexOf(LF, lineStart);
      }
      if (this.#inHeader) {
        this.#line = this.#lineStateAt(chunk, lineStart, len);
        return len;
      }
    }
    let i = chunk.indexOf(LF, pos);
    while (i !== -1) {
      if (--this.#left === 0) {
        this.#done = true;
        return i + 1;
      }
      i = chunk.indexOf(LF, i + 1);
    }
    return len;
  }

  /** State of the current line once chunk[from, to) is appended to it. */
  #lineStateAt(chunk: Buffer, from: number, to: number): 0 | 1 | 2 {
    const n = to - from;
    if (n === 0) return this.#line;
    if (n === 1 && this.#line === 0 && chunk[from] === CR) return 1;
    return 2;
  }
}

/** TOP in wire form from a whole stored message (small messages). */
export function topOfMessageBuffer(stored: Uint8Array, bodyLines: number): Buffer {
  const cutter = new TopCutter(bodyLines);
  const n = cutter.take(stored);
  const encoder = new WireEncoder();
  const body = encoder.encode(asBuffer(stored).subarray(0, n));
  const tail = cutter.done ? EMPTY : encoder.end();
  return tail.length === 0 ? body : Buffer.concat([body, tail], body.length + tail.length);
}

/**
 * TOP in wire form over a stream of stored chunks. Stops reading as soon as
 * the last wanted line is out: returning from the `for await` calls the
 * source's return(), which destroys a file stream instead of reading a large
 * attachment nobody asked for.
 */
export async function* topOfMessage(
  source: AsyncIterable<Uint8Array>,
  bodyLines: number,
): AsyncGenerator<Buffer, void, undefined> {
  const cutter = new TopCutter(bodyLines);
  const encoder = new WireEncoder();
  for await (const input of source) {
    const chunk = asBuffer(input);
    const n = cutter.take(chunk);
    const out = encoder.encode(n === chunk.length ? chunk : chunk.subarray(0, n));
    if (out.length > 0) yield out;
    if (cutter.done) return;
  }
  const tail = encoder.end();
  if (tail.length > 0) yield tail;
}

/**
 * Incremental wire (or any) -> stored converter: every CRLF becomes LF, a
 * lone CR is kept (DESIGN.md "Stored bytes"). A CR at the end of a chunk is
 * held back until the next chunk shows whether an LF follows it.
 */
export class StoredDecoder {
  #heldCr = false;

  decode(input: Uint8Array): Buffer {
    const chunk = asBuffer(input);
    const len = chunk.length;
    if (len === 0) return chunk;
    // A held CR is dropped when this chunk starts with its LF, else it was a lone CR.
    const emitHeld = this.#heldCr && chunk[0] !== LF;
    const holdLast = chunk[len - 1] === CR;
    let pairs = 0;
    let i = chunk.indexOf(LF, 1);
    while (i !== -1) {
      if (chunk[i - 1] === CR) pairs++;
      i = chunk.indexOf(LF, i + 1);
    }
    this.#heldCr = holdLast;
    const end = holdLast ? len - 1 : len;
    if (pairs === 0 && !emitHeld) return end === len ? chunk : chunk.subarray(0, end);
    const out = Buffer.allocUnsafe((emitHeld ? 1 : 0) + end - pairs);
    let at = 0;
    if (emitHeld) out[at++] = CR;
    let from = 0;
    i = chunk.indexOf(LF, 1);
    while (i !== -1) {
      if (chunk[i - 1] === CR) {
        at += copyRun(chunk, out, at, from, i - 1);
        from = i;
      }
      i = chunk.indexOf(LF, i + 1);
    }
    copyRun(chunk, out, at, from, end);
    return out;
  }

  /** A CR held at the very end of the input is a lone CR: it is kept. */
  end(): Buffer {
    if (!this.#heldCr) return EMPTY;
    this.#heldCr = false;
    return CR_BYTE;
  }
}

/** Whole input to stored form in one go (prefix lines, small messages). */
export function toStoredBuffer(input: Uint8Array): Buffer {
  const decoder = new StoredDecoder();
  const body = decoder.decode(input);
  const tail = decoder.end();
  return tail.length === 0 ? body : Buffer.concat([body, tail], body.length + tail.length);
}

/**
 * A Transform from received bytes (CRLF or LF) to stored form, counting as
 * it goes: `receivedSize` (input octets, for a size limit), `storedSize`
 * (`S=`) and `wireSize` (`W=`, the wire size of the stored result) are final
 * after 'end', so delivery names the file without a second pass.
 */
export class ToStored extends Transform {
  readonly #decoder = new StoredDecoder();
  readonly #counter = new WireSizeCounter();
  #received = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#received += chunk.length;
    this.#emit(this.#decoder.decode(chunk));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#emit(this.#decoder.end());
    callback();
  }

  #emit(out: Buffer): void {
    if (out.length === 0) return;
    this.#counter.update(out);
    this.push(out);
  }

  get receivedSize(): number {
    return this.#received;
  }

  get storedSize(): number {
    return this.#counter.storedSize;
  }

  get wireSize(): number {
    return this.#counter.wireSize;
  }
}

/** Received -> stored as a stream stage, with size counters (see ToStored). */
export function toStored(): ToStored {
  return new ToStored();
}
