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
import { ConfigError } from '../errors.js';
import { createPop3Server } from '../pop3/server.js';

export interface FrontendContext {
  readonly config: Config;
  readonly store: MailStore;
  readonly users: Authenticator;
  /** The certificate pair (reloadable), when tls.cert and tls.key are set. */
  readonly tls: TlsContextHolder | undefined;
  readonly logger: Logger;
  /** This front-end's listeners that are on, in table order. */
  readonly listeners: readonly { readonly name: ListenerName; readonly address: ListenAddress }[];
}

export interface BoundListener {
  readonly name: ListenerName;
  /** Where it listens, port 0 resolved: `127.0.0.1:1110`, `[::]:110`, a socket path. */
  readonly address: string;
}

export interface RunningFrontend {
  readonly bound: readonly BoundListener[];
  /** Stop accepting, let sessions finish their current command (limits.shutdownGraceSeconds), then drop them. */
  close(): Promise<void>;
}

export interface Frontend {
  readonly name: string;
  readonly listeners: readonly ListenerName[];
  /** Start every listener in `context.listeners`; on failure close what was started and reject. */
  start(context: FrontendContext): Promise<RunningFrontend>;
}

/** POP3 (RFC 1939) on `pop3`, and POP3 over implicit TLS (RFC 8314) on `pop3s`. */
const pop3: Frontend = {
  name: 'pop3',
  listeners: ['pop3', 'pop3s'],
  async start({ config, store, users, tls, logger, listeners }) {
    const server = createPop3Server({
      store,
      users,
      tls,
      logger,
      hostname: config.hostname,
      greeting: config.greeting.pop3,
      apop: config.apop,
      allowPlaintextAuth: config.allowPlaintextAuth,
      limits: {
        maxLineLength: config.limits.pop3LineLength,
        idleTimeoutMs: config.limits.pop3IdleSeconds * 1000,
        maxConnections: config.limits.maxConnections,
        maxConnectionsPerIp: config.limits.maxConnectionsPerIp,
        closeTimeoutMs: config.limits.shutdownGraceSeconds * 1000,
      },
    });
    return startListeners(listeners, (port, host, name) => server.listen(port, host, { implicitTls: name === 'pop3s' }), () =>
      server.close(),
    );
  },
};

export const FRONTENDS: readonly Frontend[] = [pop3];

type ListenFn = (port: number, host: string, name: ListenerName) => Promise<AddressInfo>;

/**
 * Listen on each address in turn; on a failure close what is open and
 * reject. A bare PORT binds every address: `::` (dual-stack: IPv6 and
 * IPv4), or `0.0.0.0` on a machine without IPv6.
 */
async function startListeners(
  listeners: FrontendContext['listeners'],
  listen: ListenFn,
  close: () => Promise<void>,
): Promise<RunningFrontend> {
  const bound: BoundListener[] = [];
  try {
    for (const { name, address } of listeners) {
      if (address.kind === 'unix') throw new ConfigError(`listeners.${name} cannot be a Unix socket`, { key: `listeners.${name}` });
      let info: AddressInfo;
      if (address.host !== undefined) {
        info = await listen(address.port, address.host, name);
      } else {
        try {
          info = await listen(address.port, '::', name);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
          info = await listen(address.port, '0.0.0.0', name);
        }
      }
      bound.push({ name, address: formatBound(info) });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { bound, close };
}

/** A bound TCP address as `host:port` (IPv6 in brackets). */
export function formatBound(info: AddressInfo | string | null): string {
  if (info === null) return 'unknown';
  if (typeof info === 'string') return info;
  return info.family === 'IPv6' || info.address.includes(':') ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}
