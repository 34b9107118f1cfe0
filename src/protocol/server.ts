/**
 * The TCP/TLS listener base for line-oriented front-ends: listeners (plain
 * or implicit TLS), connection tracking, per-IP and global connection
 * limits, and graceful close (STYLE.md 12: stop accepting, let each session
 * finish its current command, force-close after a timeout).
 *
 * The protocol is supplied as a ConnectionHandler: it runs one session per
 * connection and says what to tell a client refused by a limit.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { Connection, type ConnectionSettings } from './connection.js';
import { upgradeToTls, type TlsContextHolder } from './tls.js';
import { normaliseAddress } from './address.js';
import { LocalConnectionGate, type ConnectionGate } from './connection-gate.js';

export type RefusalReason = 'global-limit' | 'per-ip-limit' | 'shutting-down';

export interface ConnectionHandler {
  /** Run one session to its end. Must not reject: errors are the session's to log. */
  session(connection: Connection): Promise<void>;
  /** The line (with CRLF) to send a client refused before closing, e.g. `-ERR [SYS/TEMP] ...`. */
  refusal(reason: RefusalReason): string;
}

export interface ServerLimits {
  /** Connections open at once across every listener; 0: no limit. */
  readonly maxConnections: number;
  /** Connections open at once from one client address; 0: no limit. */
  readonly maxConnectionsPerIp: number;
  /** After close() asked sessions to stop, how long before the rest are dropped. */
  readonly closeTimeoutMs: number;
}

export interface ProtocolServerOptions {
  /** `pop3`, `smtp`: the `proto` field of every log line. */
  readonly protocol: string;
  readonly limits: ServerLimits;
  readonly connection: ConnectionSettings;
  readonly handler: ConnectionHandler;
  readonly logger: Logger;
  /** Needed for implicit-TLS listeners (and STLS, which the session does itself). */
  readonly tls?: TlsContextHolder | undefined;
  /**
   * Where the connection limits are kept. Default: this server's own count
   * under `limits`; worker processes pass one that asks the primary.
   */
  readonly gate?: ConnectionGate | undefined;
}

export interface ListenOptions {
  /** Handshake before the protocol starts (POP3S, port 995; SMTPS, 465). */
  readonly implicitTls?: boolean;
}

export class ProtocolServer {
  readonly #options: ProtocolServerOptions;
  readonly #listeners = new Set<Server>();
  readonly #connections = new Map<Connection, Promise<void>>();
  readonly #sockets = new Set<Socket>();
  /** Sockets still in their implicit-TLS handshake: not sessions yet, dropped at once on close. */
  readonly #handshaking = new Set<Socket>();
  readonly #gate: ConnectionGate;
  #nextId = 0;
  #closing: Promise<void> | undefined;

  constructor(options: ProtocolServerOptions) {
    this.#options = options;
    this.#gate = options.gate ?? new LocalConnectionGate(options.limits);
  }

  /** Open connections (sessions and handshakes in progress). */
  get connectionCount(): number {
    return this.#sockets.size;
  }

  get isClosing(): boolean {
    return this.#closing !== undefined;
  }

  /** Start a listener; may be called more than once (plain and implicit TLS on one server). */
  async listen(port: number, host: string, options: ListenOptions = {}): Promise<AddressInfo> {
    if (this.#closing !== undefined) throw new Error('server is closed');
    const implicitTls = options.implicitTls ?? false;
    if (implicitTls && this.#options.tls === undefined) {
      throw new Error('an implicit-TLS listener needs a TLS certificate and key');
    }
    // allowHalfOpen: a client may send its last commands and FIN at once
    // (`printf 'USER a\r\n...QUIT\r\n' | nc`); it still gets every reply.
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.#accept(socket, implicitTls));
    server.on('error', (err) => this.#options.logger.error({ err }, 'listener error'));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.#listeners.add(server);
    const address = server.address() as AddressInfo;
    this.#options.logger.info(
      { proto: this.#options.protocol, address: address.address, port: address.port, tls: implicitTls },
      'listening',
    );
    return address;
  }

  /**
   * Stop accepting, ask every session to finish its current command and
   * end, and drop the ones still open after `closeTimeoutMs`. Resolves when
   * every session has ended (and so released what it held).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const stopped = [...this.#listeners].map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const socket of this.#handshaking) socket.destroy();
    for (const connection of this.#connections.keys()) connection.requestShutdown();
    let timedOut = false;
    const timer = this.#options.connection.timers.start('close', this.#options.limits.closeTimeoutMs, () => {
      timedOut = true;
      for (const socket of this.#sockets) socket.destroy();
      for (const connection of this.#connections.keys()) connection.destroy();
    });
    // Bounded: no session starts once closing is set.
    while (this.#connections.size > 0) await Promise.allSettled([...this.#connections.values()]);
    timer.cancel();
    if (timedOut) this.#options.logger.warn({ proto: this.#options.protocol }, 'close timeout: connections dropped');
    await Promise.all(stopped);
  }

  #accept(socket: Socket, implicitTls: boolean): void {
    const id = (++this.#nextId).toString(36);
    const remote = normaliseAddress(socket.remoteAddress);
    const log = this.#options.logger;
    socket.on('error', (err) => log.debug({ proto: this.#options.protocol, cid: id, remote, err: err.message }, 'socket error'));
    this.#sockets.add(socket);
    const admitted = this.#gate.admit(remote);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#gate.release(remote);
    });
    const decide = (over: RefusalReason | undefined): RefusalReason | undefined => {
      const refusal = this.#closing !== undefined ? 'shutting-down' : over;
      if (refusal !== undefined) {
        log.info({ proto: this.#options.protocol, cid: id, remote, reason: refusal }, 'connection refused');
      }
      return refusal;
    };
    if (admitted === undefined || typeof admitted === 'string') {
      void this.#start(socket, id, implicitTls, decide(admitted));
      return;
    }
    // A gate in another process: the socket waits (paused, unread) for the answer.
    admitted.then(
      (over) => (socket.destroyed ? undefined : this.#start(socket, id, implicitTls, decide(over))),
      (err: unknown) => {
        log.error({ proto: this.#options.protocol, cid: id, remote, err }, 'connection gate failed');
        socket.destroy();
      },
    );
  }

  async #start(socket: Socket, id: string, implicitTls: boolean, refusal: RefusalReason | undefined): Promise<void> {
    let connection: Connection;
    const settings = this.#options.connection;
    if (implicitTls) {
      try {
        const tls = this.#options.tls as TlsContextHolder;
        this.#handshaking.add(socket);
        const secure = await upgradeToTls(socket, tls.current, settings.handshakeTimeoutMs, settings.timers);
        connection = new Connection(socket, id, settings, secure);
      } catch (err) {
        this.#options.logger.debug(
          { proto: this.#options.protocol, cid: id, remote: normaliseAddress(socket.remoteAddress), err: (err as Error).message },
          'TLS handshake failed',
        );
        return;
      } finally {
        this.#handshaking.delete(socket);
      }
    } else {
      connection = new Connection(socket, id, settings);
    }
    if (refusal === undefined && this.#closing !== undefined) refusal = 'shutting-down';
    if (refusal !== undefined) {
      connection.write(this.#options.handler.refusal(refusal));
      await connection.end();
      return;
    }
    const session = this.#options.handler.session(connection).then(
      () => undefined,
      (err: unknown) => this.#options.logger.error({ proto: this.#options.protocol, cid: id, err }, 'session failed'),
    );
    this.#connections.set(connection, session);
    await session;
    this.#connections.delete(connection);
    if (!connection.isClosed) connection.destroy();
  }
}
