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

export const FRONTENDS: readonly Frontend[] = [];

/** A bound TCP address as `host:port` (IPv6 in brackets). */
export function formatBound(info: AddressInfo | string | null): string {
  if (info === null) return 'unknown';
  if (typeof info === 'string') return info;
  return info.family === 'IPv6' || info.address.includes(':') ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}
