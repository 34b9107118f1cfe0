/**
 * A scripted SMTP client for protocol tests: writes exact bytes over a real
 * socket (plain or TLS) and reads replies (multi-line aware) in order. No
 * sleeps: every wait is for bytes or for the socket to close.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export interface Reply {
  readonly code: number;
  /** Each line without the `code-`/`code ` prefix. */
  readonly lines: readonly string[];
  /** The last line's text. */
  readonly text: string;
  /** The reply exactly as received, CRLFs included. */
  readonly raw: string;
}

export interface ConnectOptions {
  readonly host?: string;
  /** Bind the client side to this address (another 127.x for per-IP tests). */
  readonly localAddress?: string;
  /** Connect with TLS from the first byte (SMTPS). */
  readonly tls?: ConnectionOptions;
  /** Bytes to send before anything is read (a PROXY header). */
  readonly preamble?: string;
  /** Read the greeting (default true). */
  readonly readGreeting?: boolean;
}

export class SmtpTestClient {
  #socket: Socket | TLSSocket;
  #buffer = '';
  #waiters: (() => void)[] = [];
  #ended = false;
  #closed: Promise<void>;
  /** Everything received, in order. */
  transcript = '';
  greeting: Reply | undefined;

  private constructor(socket: Socket | TLSSocket) {
    this.#socket = socket;
    this.#closed = this.#attach(socket);
  }

  /** `port`, or the path of a Unix socket. */
  static async connect(port: number | string, options: ConnectOptions = {}): Promise<SmtpTestClient> {
    const host = options.host ?? '127.0.0.1';
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s: Socket | TLSSocket =
        typeof port === 'string'
          ? netConnect({ path: port }, () => resolve(s))
          : options.tls !== undefined
          ? tlsConnect({ port, host, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }), ...options.tls }, () =>
              resolve(s),
            )
          : netConnect({ port, host, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) }, () =>
              resolve(s),
            );
      s.once('error', reject);
    });
    const client = new SmtpTestClient(socket);
    if (options.preamble !== undefined) client.write(options.preamble);
    if (options.readGreeting !== false) client.greeting = await client.reply();
    return client;
  }

  #attach(socket: Socket | TLSSocket): Promise<void> {
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      this.#buffer += data;
      this.transcript += data;
      this.#wake();
    });
    socket.on('error', () => undefined);
    return new Promise((resolve) => {
      socket.once('close', () => {
        this.#ended = true;
        this.#wake();
        resolve();
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  async #more(): Promise<void> {
    if (this.#ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer)}`);
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Send exactly these bytes. */
  write(bytes: string | Buffer): void {
    this.#socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** The next complete reply. */
  async reply(): Promise<Reply> {
    for (;;) {
      let start = 0;
      const lines: string[] = [];
      for (;;) {
        const end = this.#buffer.indexOf('\r\n', start);
        if (end === -1) break;
        const line = this.#buffer.slice(start, end);
        start = end + 2;
        const m = /^(\d{3})([ -])(.*)$/.exec(line);
        if (m === null) throw new Error(`not a reply line: ${JSON.stringify(line)}`);
        lines.push(m[3] ?? '');
        if (m[2] === ' ') {
          const raw = this.#buffer.slice(0, start);
          this.#buffer = this.#buffer.slice(start);
          return { code: Number(m[1]), lines, text: m[3] ?? '', raw };
        }
      }
      await this.#more();
    }
  }

  /** `n` replies in order (pipelining). */
  async replies(n: number): Promise<Reply[]> {
    const out: Reply[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply());
    return out;
  }

  /** Send a command line (CRLF added) and read its reply. */
  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** EHLO, returning the extension keywords (upper case, first word each). */
  async ehlo(name = 'client.example'): Promise<{ reply: Reply; extensions: string[] }> {
    const reply = await this.command(`EHLO ${name}`);
    return { reply, extensions: reply.lines.slice(1).map((l) => l.toUpperCase()) };
  }

  /** STARTTLS, then the handshake on the same socket; the next EHLO is the caller's. */
  async startTls(options: ConnectionOptions): Promise<Reply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    await this.upgrade(options);
    return reply;
  }

  /** TLS handshake on the current socket (after a 220 to STARTTLS). */
  async upgrade(options: ConnectionOptions): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ...options }, () => resolve(s));
      s.once('error', reject);
    });
    this.#socket = secure;
    this.#closed = this.#attach(secure);
  }

  get socket(): Socket | TLSSocket {
    return this.#socket;
  }

  /** Resolves when the server closed the connection; returns what was left unread. */
  async closed(): Promise<string> {
    await this.#closed;
    return this.#buffer;
  }

  async quit(): Promise<Reply> {
    const reply = await this.command('QUIT');
    await this.#closed;
    return reply;
  }

  /** Half-close: shutdown(SHUT_WR) (after TLS close_notify on a TLS socket); replies can still be read. */
  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** `code enhanced` of a reply, e.g. `550 5.1.1`, for compact assertions. */
export function codeOf(reply: Reply): string {
  const m = /^(\d\.\d{1,3}\.\d{1,3}) /.exec(reply.text);
  return m === null ? String(reply.code) : `${reply.code} ${m[1]}`;
}
