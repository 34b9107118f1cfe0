/**
 * createHttpServer: maildird's HTTP listener on node:http.
 *
 * Public (DESIGN "Names and defaults", HTTP row):
 *   GET  /.well-known/autoconfig/mail/config-v1.1.xml[?emailaddress=]  Thunderbird autoconfig
 *   GET  /mail/config-v1.1.xml?emailaddress=                            the same, as the autoconfig.<domain> host serves it
 *   POST /autodiscover/autodiscover.xml                                 Outlook POX autodiscover (any case)
 * Admin (127.0.0.1, ::1 and http.adminNetworks only; anything else 403):
 *   GET  /healthz   200 or 503 with a small JSON body
 *   GET  /metrics   Prometheus text format 0.0.4
 *
 * A request that came through a proxy (Forwarded, X-Forwarded-For or
 * X-Real-IP) is not trusted with the admin pages even from loopback: the
 * client is somewhere else, and a proxy that forwards every path would
 * otherwise publish them.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Authenticator } from '../auth/authenticator.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { normaliseAddress } from '../protocol/address.js';
import { AdminNetworks } from './admin-networks.js';
import { settingsFor, type ClientEndpoints } from './client-settings.js';
import {
  OUTLOOK_RESPONSE_SCHEMA,
  autoconfigXml,
  autodiscoverErrorXml,
  autodiscoverXml,
  parseAutodiscoverRequest,
} from './client-xml.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import type { ServerMetrics } from './server-metrics.js';

/** What /healthz reports: each check with a short reason. */
export interface HealthReport {
  readonly ok: boolean;
  readonly checks: readonly { readonly name: string; readonly ok: boolean; readonly detail: string }[];
}

export interface HttpServerOptions {
  /** The endpoints to advertise (client-settings.ts clientEndpoints), or a function for ones that may change. */
  readonly endpoints: ClientEndpoints | (() => ClientEndpoints);
  /** Canonical user names for the logins. */
  readonly users: Authenticator;
  readonly metrics: ServerMetrics;
  readonly health: () => Promise<HealthReport>;
  /** CIDR networks besides 127.0.0.1 and ::1 allowed on /metrics and /healthz. */
  readonly adminNetworks?: readonly string[];
  /** Name shown by clients for the account provider; default `maildird on <hostname>`. */
  readonly displayName?: string;
  readonly logger?: Logger;
  readonly maxConnections?: number;
  /** close(): how long requests in progress may finish before their sockets are destroyed. */
  readonly closeTimeoutMs?: number;
}

/** Largest autodiscover request body read; a real one is about 300 octets. */
const MAX_BODY_BYTES = 16 * 1024;
const XML_TYPE = 'application/xml; charset=utf-8';

type Route = 'autoconfig' | 'autodiscover' | 'healthz' | 'metrics' | 'other';

export class HttpServer {
  readonly #options: HttpServerOptions;
  readonly #logger: Logger;
  readonly #admin: AdminNetworks;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #closing: Promise<void> | undefined;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger()).child({ proto: 'http' });
    this.#admin = new AdminNetworks(options.adminNetworks ?? []);
    this.#server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
      void this.#handle(req, res);
    });
    if (options.maxConnections !== undefined && options.maxConnections > 0) this.#server.maxConnections = options.maxConnections;
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      options.metrics.connectionsOpened.inc({ proto: 'http' });
      socket.once('close', () => {
        this.#sockets.delete(socket);
        options.metrics.connectionsClosed.inc({ proto: 'http' });
        options.metrics.bytesIn.inc({ proto: 'http' }, socket.bytesRead);
        options.metrics.bytesOut.inc({ proto: 'http' }, socket.bytesWritten);
      });
    });
    this.#server.on('clientError', (err, socket) => {
      this.#logger.debug({ err: err.message }, 'bad HTTP request');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Open connections now. */
  get connectionCount(): number {
    return this.#sockets.size;
  }

  get isListening(): boolean {
    return this.#server.listening;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#logger.error({ err }, 'listener error'));
        const address = this.#server.address() as AddressInfo;
        this.#logger.info({ address: address.address, port: address.port }, 'listening');
        resolve(address);
      });
    });
  }

  /** Stop accepting; idle keep-alive connections close now, requests in progress get closeTimeoutMs. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, this.#options.closeTimeoutMs ?? 5_000);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const remote = normaliseAddress(req.socket.remoteAddress);
    let route: Route = 'other';
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      const lower = path.toLowerCase();
      if (path === '/.well-known/autoconfig/mail/config-v1.1.xml' || path === '/mail/config-v1.1.xml') {
        route = 'autoconfig';
        if (!this.#method(req, res, ['GET', 'HEAD'])) return;
        this.#autoconfig(res, url.searchParams.get('emailaddress') ?? undefined);
      } else if (lower === '/autodiscover/autodiscover.xml') {
        route = 'autodiscover';
        if (!this.#method(req, res, ['POST'])) return;
        await this.#autodiscover(req, res);
      } else if (path === '/healthz' || path === '/metrics') {
        route = path === '/healthz' ? 'healthz' : 'metrics';
        if (!this.#isAdmin(req, remote)) {
          this.#send(res, 403, 'text/plain; charset=utf-8', 'forbidden: admin pages answer only loopback and http.adminNetworks\n');
          return;
        }
        if (!this.#method(req, res, ['GET', 'HEAD'])) return;
        if (route === 'healthz') await this.#healthz(res);
        else this.#send(res, 200, PROMETHEUS_CONTENT_TYPE, await this.#options.metrics.scrape());
      } else {
        this.#send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      }
    } catch (err) {
      this.#logger.error({ err, remote }, 'HTTP request failed');
      if (!res.headersSent) this.#send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    } finally {
      // The path only: an autoconfig query holds an address, which is not for the logs at info.
      this.#options.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
      this.#logger.info({ remote, method: req.method, route, status: res.statusCode }, 'http request');
    }
  }

  #isAdmin(req: IncomingMessage, remote: string): boolean {
    const headers = req.headers;
    const isProxied = headers['forwarded'] !== undefined || headers['x-forwarded-for'] !== undefined || headers['x-real-ip'] !== undefined;
    return !isProxied && this.#admin.allows(remote);
  }

  #method(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): boolean {
    if (allowed.includes(req.method ?? '')) return true;
    res.setHeader('Allow', allowed.join(', '));
    this.#send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return false;
  }

  #endpoints(): ClientEndpoints {
    const endpoints = this.#options.endpoints;
    return typeof endpoints === 'function' ? endpoints() : endpoints;
  }

  #displayName(endpoints: ClientEndpoints): string {
    return this.#options.displayName ?? `maildird on ${endpoints.hostname}`;
  }

  #autoconfig(res: ServerResponse, address: string | undefined): void {
    const endpoints = this.#endpoints();
    const result = settingsFor(endpoints, this.#options.users, address?.trim());
    if (!result.ok) {
      const status = result.reason === 'invalid-address' ? 400 : 404;
      this.#send(res, status, 'text/plain; charset=utf-8', result.reason === 'invalid-address' ? 'invalid emailaddress\n' : 'not a domain of this server\n');
      return;
    }
    this.#send(res, 200, XML_TYPE, autoconfigXml(result.settings, this.#displayName(endpoints)), true);
  }

  async #autodiscover(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) {
      this.#send(res, 413, XML_TYPE, autodiscoverErrorXml(600, 'Request too large'));
      return;
    }
    const request = parseAutodiscoverRequest(body);
    if (!request.ok) {
      this.#send(res, 400, XML_TYPE, autodiscoverErrorXml(600, `Invalid Request: ${request.reason}`));
      return;
    }
    if (request.schema !== undefined && request.schema.replace(/^https:/, 'http:') !== OUTLOOK_RESPONSE_SCHEMA) {
      // Exchange ActiveSync (mobilesync) and others: only the Outlook POX schema is served.
      this.#send(res, 200, XML_TYPE, autodiscoverErrorXml(601, 'Requested schema version not supported'));
      return;
    }
    const result = settingsFor(this.#endpoints(), this.#options.users, request.address);
    if (!result.ok) {
      const status = result.reason === 'invalid-address' ? 400 : 404;
      const message = result.reason === 'invalid-address' ? 'Invalid Request: bad EMailAddress' : 'Invalid Request: not a domain of this server';
      this.#send(res, status, XML_TYPE, autodiscoverErrorXml(600, message));
      return;
    }
    this.#send(res, 200, XML_TYPE, autodiscoverXml(result.settings), true);
  }

  async #healthz(res: ServerResponse): Promise<void> {
    const report = await this.#options.health();
    this.#send(res, report.ok ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify({ status: report.ok ? 'ok' : 'fail', checks: report.checks })}\n`);
  }

  #send(res: ServerResponse, status: number, type: string, body: string, isPrivate = false): void {
    const bytes = Buffer.from(body, 'utf8');
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', bytes.length);
    // Settings for one address name its login: no shared cache keeps them.
    res.setHeader('Cache-Control', isPrivate ? 'private, no-store' : 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.end(res.req.method === 'HEAD' ? undefined : bytes);
    this.#options.metrics.bytesOut.inc({ proto: 'http' }, res.req.method === 'HEAD' ? 0 : bytes.length);
  }
}

/**
 * The request body as text, or undefined when it is larger than `limit`
 * octets. An oversized body is read and dropped (not kept), so the reply
 * still reaches the client; requestTimeout bounds a body that never ends.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = Number(req.headers['content-length'] ?? '0') > limit ? limit + 1 : 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.once('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

export function createHttpServer(options: HttpServerOptions): HttpServer {
  return new HttpServer(options);
}
