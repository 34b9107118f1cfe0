/**
 * Checks message content as it streams from DATA (or `maildird deliver`'s
 * stdin) to the store, without holding the message: the size limit, the
 * hop limit (Received headers) and, for SMTP, bare line endings.
 *
 * Bare line endings and SMTP smuggling: what smtp-server does, measured
 * over real sockets (test/smtp/smuggling.test.ts):
 *   - DATA ends only at exactly <CR><LF>.<CR><LF> (or ".<CR><LF>" as the
 *     first line). <LF>.<LF>, <CR>.<CR>, <LF>.<CR><LF> and <CR><LF>.<LF>
 *     never end it: they, and whatever commands follow them, arrive here as
 *     content. So smtp-server never lets a second message be injected.
 *   - A leading "." is removed after any LF, bare or not (`<LF>..x` gives
 *     `<LF>.x`), so after unstuffing a legitimately stuffed dot line and a
 *     fake end marker look alike.
 *   - Commands may end in a bare LF.
 *
 * maildird's choice (deliberate; RFC 5321 2.3.8 says CR and LF appear in
 * content only as CRLF):
 *   - a bare CR anywhere is refused with 550 5.6.0: no client sends one in
 *     text; CR-only line ends are what <CR>.<CR> smuggling relies on; and a
 *     stored lone CR is kept (DESIGN.md "Stored bytes") and handed to POP3
 *     readers as is, where a CR-as-line-end reader could end early.
 *   - a line holding only "." with a bare LF on either side (<LF>.<LF>,
 *     <LF>.<CR><LF>, <CR><LF>.<LF>) is refused with 550 5.6.0: it is an
 *     end-of-data marker to some other server, i.e. a smuggling attempt
 *     (CVE-2023-51764 class); nothing is stored. A real client that
 *     produces it: curl uploading an LF-only file with a "." line (curl
 *     only escapes dots after CRLF); `curl --crlf` sends the same file
 *     correctly. swaks (data fixup on) sends CRLF and escapes dots.
 *   - any other bare LF is normalised: it is a line end, stored as LF like
 *     every CRLF (real clients and scripts send bare-LF lines; Postfix 3.9
 *     does the same with `smtpd_forbid_bare_newline = normalize`).
 */
import type { SmtpReplyError } from '../errors.js';
import { REPLIES, replyOf } from './replies.js';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
/** Enough of a line's start to recognise `Received:` (with WSP before the colon, RFC 5322 4.5). */
const HEAD_BYTES = 16;
const RECEIVED_RE = /^received[ \t]*:/i;

export interface DataInspectorOptions {
  /** Largest content in octets (as received, unstuffed); over it: 552 5.3.4. */
  readonly maxBytes?: number | undefined;
  /** Most `Received:` headers accepted (RFC 5321 6.3 loop detection); over it: 554 5.4.6. */
  readonly maxReceived?: number | undefined;
  /** SMTP: refuse bare CR and fake end-of-data lines (see the module comment). */
  readonly strictLineEnds: boolean;
}

type LineEnd = 'crlf' | 'lf';

export class DataInspector {
  readonly #maxBytes: number;
  readonly #maxReceived: number;
  readonly #strict: boolean;
  #bytes = 0;
  #failure: SmtpReplyError | undefined;
  /** The line end before the current line; the DATA command's counts as CRLF. */
  #previousEnd: LineEnd = 'crlf';
  #lineLength = 0;
  /** First octet of the current line, -1 while it is empty (a lone "." line is a fake end marker). */
  #firstOctet = -1;
  /** Start of the current line as text, kept only in the header section (for `Received:`). */
  #head = '';
  #pendingCr = false;
  #inHeader = true;
  #received = 0;

  constructor(options: DataInspectorOptions) {
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#maxReceived = options.maxReceived ?? Infinity;
    this.#strict = options.strictLineEnds;
  }

  /** Octets seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** `Received:` headers counted in the header section. */
  get receivedHeaders(): number {
    return this.#received;
  }

  /** The first violation found; once set, later chunks are only counted. */
  get failure(): SmtpReplyError | undefined {
    return this.#failure;
  }

  /** Check the next chunk; throws the reply (and remembers it) at the first violation. */
  update(chunk: Uint8Array): void {
    this.#bytes += chunk.length;
    if (this.#failure !== undefined) return;
    if (this.#bytes > this.#maxBytes) this.#fail(replyOf(REPLIES.tooLarge));
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    let pos = 0;
    if (this.#pendingCr && len > 0) {
      this.#pendingCr = false;
      if (buf[0] === LF) {
        this.#endLine('crlf');
        pos = 1;
      } else {
        this.#loneCr();
      }
    }
    while (pos < len) {
      const lf = buf.indexOf(LF, pos);
      const segmentEnd = lf === -1 ? len : lf;
      let contentEnd = segmentEnd;
      let crlf = false;
      for (let cr = buf.indexOf(CR, pos); cr !== -1 && cr < segmentEnd; cr = buf.indexOf(CR, cr + 1)) {
        if (cr === segmentEnd - 1) {
          contentEnd = cr;
          if (lf !== -1) crlf = true;
          else this.#pendingCr = true;
        } else {
          this.#loneCr();
        }
      }
      this.#addToLine(buf, pos, contentEnd);
      if (lf === -1) break;
      this.#endLine(crlf ? 'crlf' : 'lf');
      pos = lf + 1;
    }
  }

  /** The content is complete; throws on a final bare CR. */
  end(): void {
    if (this.#failure !== undefined) return;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      this.#loneCr();
    }
  }

  /** A CR not followed by LF: refused in strict mode, otherwise line content. */
  #loneCr(): void {
    if (this.#strict) this.#fail(replyOf(REPLIES.bareCr));
    if (this.#lineLength === 0) this.#firstOctet = CR;
    this.#lineLength += 1;
    if (this.#inHeader && this.#head.length < HEAD_BYTES) this.#head += '\r';
  }

  #addToLine(buf: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.#lineLength === 0) this.#firstOctet = buf[from] ?? -1;
    // No string per body line: the body only needs the first octet.
    if (this.#inHeader && this.#head.length < HEAD_BYTES) {
      this.#head += buf.toString('latin1', from, Math.min(to, from + HEAD_BYTES - this.#head.length));
    }
    this.#lineLength += to - from;
  }

  #endLine(end: LineEnd): void {
    const isDotLine = this.#lineLength === 1 && this.#firstOctet === DOT;
    if (this.#strict && isDotLine && (end === 'lf' || this.#previousEnd === 'lf')) {
      this.#fail(replyOf(REPLIES.fakeEndOfData));
    }
    if (this.#inHeader) {
      if (this.#lineLength === 0) {
        this.#inHeader = false;
      } else if (RECEIVED_RE.test(this.#head)) {
        this.#received += 1;
        if (this.#received > this.#maxReceived) this.#fail(replyOf(REPLIES.mailLoop));
      }
    }
    this.#previousEnd = end;
    this.#lineLength = 0;
    this.#firstOctet = -1;
    this.#head = '';
  }

  #fail(reply: SmtpReplyError): never {
    this.#failure = reply;
    throw reply;
  }
}
