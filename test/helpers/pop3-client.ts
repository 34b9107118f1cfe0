/**
 * A small send/expect client for protocol tests over real sockets
 * (STYLE.md 10: nntp-server's `client.send('GROUP x').expect(/^211 /)`).
 * Waits on replies, never on time: every read resolves when the bytes are
 * there, or rejects when the server closes first.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';

export interface ConnectOptions {
  readonly host?: string;
  /** Implicit TLS: handshake first, trusting this CA (PEM). */
  readonly tls?: { readonly ca: string | Buffer; readonly servername?: string };
}

export class ServerClosedError extends Error {
  override readonly name = 'ServerClosedError';
}

export class LineClient {
  #socket: Socket | TLSSocket;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket | TLSSocket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  static async connect(port: number, options: ConnectOptions = {}): Promise<LineClient> {
    const host = options.host ?? '127.0.0.1';
    if (options.tls !== undefined) {
      const socket = tlsConnect({ port, host, ca: options.tls.ca, servername: options.tls.servername ?? 'localhost' });
      await once(socket, 'secureConnect');
      return new LineClient(socket);
    }
    const socket = netConnect({ port, host });
    await once(socket, 'connect');
    return new LineClient(socket);
  }

  get socket(): Socket | TLSSocket {
    return this.#socket;
  }

  /** True once the server closed its side and every received byte was read. */
  get isDrained(): boolean {
    return this.#ended && this.#buffer.length === 0;
  }

  /** Send one or more lines, each ended with CRLF, in a single write. */
  send(...lines: string[]): this {
    this.#socket.write(lines.map((l) => `${l}\r\n`).join(''));
    return this;
  }

  /** Send bytes exactly as given. */
  sendRaw(data: string | Buffer): this {
    this.#socket.write(data);
    return this;
  }

  /** The next line, without its CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a);
      if (lf !== -1) {
        const end = lf > 0 && this.#buffer[lf - 1] === 0x0d ? lf - 1 : lf;
        const line = this.#buffer.subarray(0, end).toString('utf8');
        this.#buffer = this.#buffer.subarray(lf + 1);
        return line;
      }
      await this.#more();
    }
  }

  /** Read a line and check it: a string must match exactly, a RegExp must match. */
  async expect(pattern: string | RegExp): Promise<string> {
    const line = await this.line();
    const ok = typeof pattern === 'string' ? line === pattern : pattern.test(line);
    if (!ok) throw new Error(`expected ${String(pattern)}, got ${JSON.stringify(line)}`);
    return line;
  }

  /** Send a line and expect one reply line. */
  async command(line: string, pattern: string | RegExp): Promise<string> {
    this.send(line);
    return this.expect(pattern);
  }

  /** The lines of a multi-line body up to the lone ".", dot-unstuffed. */
  async lines(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === '.') return out;
      out.push(line.startsWith('.') ? line.slice(1) : line);
    }
  }

  /** The raw bytes of a multi-line body up to CRLF.CRLF, dot-unstuffed, CRLFs kept. */
  async body(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a);
      if (lf === -1) {
        await this.#more();
        continue;
      }
      const line = this.#buffer.subarray(0, lf + 1);
      this.#buffer = this.#buffer.subarray(lf + 1);
      if (line.length === 3 && line[0] === 0x2e && line[1] === 0x0d) return Buffer.concat(parts);
      parts.push(line[0] === 0x2e ? line.subarray(1) : line);
    }
  }

  /** Upgrade to TLS after a `+OK` to STLS (client side of RFC 2595). */
  async startTls(ca: string | Buffer, servername = 'localhost'): Promise<void> {
    if (this.#buffer.length > 0) throw new Error('bytes left before the TLS handshake');
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    const secure = tlsConnect({ socket: plain, ca, servername });
    await once(secure, 'secureConnect');
    this.#socket = secure;
    this.#ended = false;
    this.#listen(secure);
  }

  /** Wait until the server closes the connection; returns whatever it sent that was not read. */
  async closed(): Promise<string> {
    while (!this.#ended) await this.#more();
    const rest = this.#buffer.toString('utf8');
    this.#buffer = Buffer.alloc(0);
    return rest;
  }

  /** Close our side. */
  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #listen(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    const onEnd = (): void => {
      this.#ended = true;
      this.#wake();
    };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  #more(): Promise<void> {
    if (this.#ended) return Promise.reject(new ServerClosedError('server closed the connection'));
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
