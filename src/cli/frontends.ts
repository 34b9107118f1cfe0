/**
 * The front-ends `maildird serve` can start, as a table: each entry names
 * the listeners it serves and starts them from the shared parts (store,
 * user database, TLS, config, logger). A new front-end plugs in by adding
 * one entry; a configured listener that no entry claims is reported as
 * "not built yet".
 */
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../auth/authenticator.js';
import type { Config, ListenAddress, ListenerName } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { TlsContextHolder } from '../protocol/tls.js';
import type { MailStore } from '../storage/store.js';
import type { LoginDelay } from '../auth/login-delay.js';
import type { LoginThrottle } from '../auth/throttle.js';
import type { ConnectionGate } from '../protocol/connection-gate.js';
import type { AliasTable } from '../smtp/aliases.js';
import { ConfigError } from '../errors.js';
import { clientEndpoints } from '../http/client-settings.js';
import { createHttpServer, type HealthReport } from '../http/server.js';
import type { ServerMetrics } from '../http/server-metrics.js';
import { createPop3Server } from '../pop3/server.js';
import { createSmtpServer, type SmtpServer } from '../smtp/server.js';
import { ObservedStore, observePop3, observeSmtp } from './observe.js';

export interface FrontendContext {
  readonly config: Config;
  readonly store: MailStore;
  readonly users: Authenticator;
  /** The aliases (`aliases` key), one live table for every SMTP/LMTP listener; reloads swap its contents. */
  readonly aliases: AliasTable | undefined;
  /** The certificate pair (reloadable), when tls.cert and tls.key are set. */
  readonly tls: TlsContextHolder | undefined;
  readonly logger: Logger;
  /** This front-end's listeners that are on, in table order. */
  readonly listeners: readonly { readonly name: ListenerName; readonly address: ListenAddress }[];
  /** What /metrics shows; each front-end feeds it. */
  readonly metrics: ServerMetrics;
  /** Listeners the front-ends before this one bound (their real ports, for the client settings HTTP serves). */
  readonly bound: readonly BoundListener[];
  /** The /healthz checks (store writable, listeners up). */
  readonly health: () => Promise<HealthReport>;
  /** Where a protocol server counts its connection limits (cluster workers ask the primary); undefined: its own count. */
  readonly connectionGate?: ((server: string) => ConnectionGate | undefined) | undefined;
  /** One failed-login throttle for every front-end (cluster workers share theirs); undefined: each server its own. */
  readonly throttle?: LoginThrottle | undefined;
  /** POP3 LOGIN-DELAY bookkeeping shared between processes (cluster workers); undefined: the POP3 server's own. */
  readonly loginDelay?: LoginDelay | undefined;
}

export interface BoundListener {
  readonly name: ListenerName;
  /** Where it listens, port 0 resolved: `127.0.0.1:1110`, `[::]:110`, a socket path. */
  readonly address: string;
}

export interface RunningFrontend {
  readonly bound: readonly BoundListener[];
  /** True while every listener of this front-end accepts connections (for /healthz). */
  isListening(): boolean;
  /** Stop accepting, let sessions finish their current command (limits.shutdownGraceSeconds), then drop them. */
  close(): Promise<void>;
}

export interface Frontend {
  readonly name: string;
  readonly listeners: readonly ListenerName[];
  /** Start every listener in `context.listeners`; on failure close what was started and reject. */
  start(context: FrontendContext): Promise<RunningFrontend>;
}

/** POP3 (RFC 1939) on `pop3`, and POP3 over implicit TLS (RFC 8314) on `pop3s`: one server, both listeners. */
const pop3: Frontend = {
  name: 'pop3',
  listeners: ['pop3', 'pop3s'],
  async start({ config, store, users, tls, logger, listeners, metrics, connectionGate, throttle, loginDelay }) {
    const server = createPop3Server({
      store: new ObservedStore(store, metrics, 'pop3'),
      users,
      tls,
      logger,
      connectionGate: connectionGate?.('pop3'),
      throttle,
      hostname: config.hostname,
      greeting: config.greeting.pop3,
      apop: config.apop,
      cramMd5: config.cramMd5,
      loginDelaySeconds: config.loginDelaySeconds,
      loginDelay,
      allowPlaintextAuth: config.allowPlaintextAuth,
      limits: {
        maxLineLength: config.limits.pop3LineLength,
        idleTimeoutMs: config.limits.pop3IdleSeconds * 1000,
        lineTimeoutMs: config.limits.lineSeconds * 1000,
        maxConnections: config.limits.maxConnections,
        maxConnectionsPerIp: config.limits.maxConnectionsPerIp,
        closeTimeoutMs: config.limits.shutdownGraceSeconds * 1000,
      },
    });
    const unobserve = observePop3(server, metrics);
    // Pop3Server has no listening state to read: up from start until close().
    let isOpen = true;
    const close = async () => {
      isOpen = false;
      await server.close();
      unobserve();
    };
    return startListeners(
      listeners,
      (name, address) => onEveryAddress(address, (port, host) => server.listen(port, host, { implicitTls: name === 'pop3s' })),
      close,
      close,
      () => isOpen,
    );
  },
};

/**
 * SMTP (RFC 5321) on `smtp`, submission (RFC 6409) on `submission`, SMTPS
 * (RFC 8314) on `smtps` and LMTP (RFC 2033) on `lmtp`: one server per
 * listener, since each has its own rules (DESIGN "SMTP AUTH": offered on
 * inbound SMTP after STARTTLS or on loopback, never required; required
 * before MAIL on submission and SMTPS). LMTP comes from a local MTA and
 * offers no AUTH.
 */
const smtp: Frontend = {
  name: 'smtp',
  listeners: ['smtp', 'submission', 'smtps', 'lmtp'],
  async start({ config, store, users, aliases, tls, logger, listeners, metrics, throttle, connectionGate }) {
    const servers: SmtpServer[] = [];
    const unobserve: (() => void)[] = [];
    const closeAll = async () => {
      await Promise.all(servers.map((server) => server.close()));
      for (const stop of unobserve) stop();
    };
    return startListeners(
      listeners,
      (name, address) => {
        const server = createSmtpServer({
          store: new ObservedStore(store, metrics, name),
          users,
          tls,
          logger,
          throttle,
          connectionGate: connectionGate?.(name),
          localDomains: config.domains,
          aliases,
          hostname: config.hostname,
          banner: config.greeting.smtp,
          trace: config.trace,
          filter:
            config.filter.command === undefined
              ? undefined
              : { command: config.filter.command, timeoutMs: config.filter.timeoutSeconds * 1000, env: process.env },
          implicitTls: name === 'smtps',
          lmtp: name === 'lmtp',
          requireAuth: name === 'submission' || name === 'smtps',
          cramMd5: config.cramMd5,
          authOffered: name === 'lmtp' ? 'never' : config.allowPlaintextAuth ? 'always' : 'tls-or-loopback',
          limits: {
            maxMessageBytes: config.limits.maxMessageBytes,
            maxRecipients: config.limits.maxRecipients,
            maxConnections: config.limits.maxConnections,
            maxConnectionsPerIp: config.limits.maxConnectionsPerIp,
            idleTimeoutMs: config.limits.smtpIdleSeconds * 1000,
            lineTimeoutMs: config.limits.lineSeconds * 1000,
            maxLineLength: config.limits.smtpLineLength,
            closeTimeoutMs: config.limits.shutdownGraceSeconds * 1000,
          },
        });
        servers.push(server);
        unobserve.push(observeSmtp(server, metrics, name));
        // A bare PORT: no host, so Node binds every address (IPv6 and IPv4 where it can).
        return server.listen(
          address.kind === 'unix'
            ? { path: address.path }
            : address.host === undefined
              ? { port: address.port }
              : { port: address.port, host: address.host },
        );
      },
      closeAll,
      closeAll,
      () => servers.every((server) => server.address() !== null),
    );
  },
};

/**
 * HTTP on `http`: autoconfig and autodiscover for clients, /healthz and
 * /metrics for the operator (src/http/server.ts). Last in the table, so it
 * advertises the ports the mail listeners really bound.
 */
const http: Frontend = {
  name: 'http',
  listeners: ['http'],
  async start({ config, users, logger, listeners, metrics, bound, health }) {
    const ports: Partial<Record<ListenerName, number>> = {};
    for (const listener of bound) {
      const port = Number(listener.address.slice(listener.address.lastIndexOf(':') + 1));
      if (Number.isInteger(port) && port > 0) ports[listener.name] ??= port;
    }
    const server = createHttpServer({
      endpoints: clientEndpoints(config, ports),
      users,
      metrics,
      health,
      adminNetworks: config.http.adminNetworks,
      logger,
      maxConnections: config.limits.maxConnections,
      closeTimeoutMs: config.limits.shutdownGraceSeconds * 1000,
    });
    const removeSource = metrics.addConnectionSource('http', () => server.connectionCount, { hasLogins: false });
    const close = async () => {
      await server.close();
      removeSource();
    };
    return startListeners(
      listeners,
      (_name, address) => onEveryAddress(address, (port, host) => server.listen(port, host)),
      close,
      close,
      () => server.isListening,
    );
  },
};

export const FRONTENDS: readonly Frontend[] = [pop3, smtp, http];

type ListenOne = (name: ListenerName, address: ListenAddress) => Promise<AddressInfo | string>;

/** Listen on each address in turn; on a failure run `abort` (close what is open) and reject. */
async function startListeners(
  listeners: FrontendContext['listeners'],
  listen: ListenOne,
  close: () => Promise<void>,
  abort: () => Promise<void>,
  isListening: () => boolean,
): Promise<RunningFrontend> {
  const bound: BoundListener[] = [];
  try {
    for (const { name, address } of listeners) bound.push({ name, address: formatBound(await listen(name, address)) });
  } catch (err) {
    await abort();
    throw err;
  }
  return { bound, close, isListening };
}

/**
 * A listener whose front-end takes a host string: a bare PORT binds `::`
 * (dual-stack: IPv6 and IPv4), or `0.0.0.0` on a machine without IPv6.
 */
async function onEveryAddress(
  address: ListenAddress,
  listen: (port: number, host: string) => Promise<AddressInfo>,
): Promise<AddressInfo> {
  if (address.kind === 'unix') throw new ConfigError(`a Unix socket is not a valid address here: ${address.path}`);
  if (address.host !== undefined) return listen(address.port, address.host);
  try {
    return await listen(address.port, '::');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
    return listen(address.port, '0.0.0.0');
  }
}

/** A bound TCP address as `host:port` (IPv6 in brackets). */
export function formatBound(info: AddressInfo | string | null): string {
  if (info === null) return 'unknown';
  if (typeof info === 'string') return info;
  return info.family === 'IPv6' || info.address.includes(':') ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}
