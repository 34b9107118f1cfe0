/**
 * createPop3Server: the POP3 front-end as a library. The store and the user
 * database are ports (src/storage/store.ts, src/auth/authenticator.ts), so
 * a library user can plug in their own, as the Indy and Clever components
 * let users plug storage in through events.
 *
 *   const server = createPop3Server({ store, users, tls: { cert, key } });
 *   server.on('login', (e) => ...);
 *   await server.listen(1110, '127.0.0.1');
 *   await server.listen(1995, '127.0.0.1', { implicitTls: true });
 *   ...
 *   await server.close();
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { MailStore } from '../storage/store.js';
import { ProtocolServer, type RefusalReason } from '../protocol/server.js';
import { TlsContextHolder, type TlsMaterial, type TlsOption } from '../protocol/tls.js';
import { realTimers, type Timers } from '../protocol/timers.js';
import type { SecureContext } from 'node:tls';
import { DEFAULT_POP3_LIMITS, type Pop3Limits, type Pop3SessionConfig } from './config.js';
import { LoginDelay } from '../auth/login-delay.js';
import { LoginThrottle } from '../auth/throttle.js';
import type { ConnectionGate } from '../protocol/connection-gate.js';
import { Pop3Session } from './session.js';
import { errLine } from './replies.js';
import type { Pop3EventSink, Pop3ServerEvents } from './events.js';

export interface Pop3ServerOptions {
  readonly store: MailStore;
  readonly users: Authenticator;
  /** Certificate and key (PEM), a SecureContext, or a shared reloadable holder: enables STLS and implicit TLS. */
  readonly tls?: TlsOption | undefined;
  /** Default for listen(): handshake first (POP3S, RFC 8314). */
  readonly implicitTls?: boolean | undefined;
  readonly limits?: Partial<Pop3Limits> | undefined;
  /** Root logger; each connection logs through a child `{ proto: 'pop3', cid, remote }`. Default: silent. */
  readonly logger?: Logger | undefined;
  /**
   * Log every command and reply (`C: ...`/`S: ...`, PASS, AUTH payloads and
   * APOP digests masked) at debug level; default true (the logger's level
   * still decides). The config's `trace` key.
   */
  readonly trace?: boolean | undefined;
  /** Name in the APOP timestamp; default the machine's host name. */
  readonly hostname?: string | undefined;
  /** Greeting text; default `maildird POP3 server ready`. No `<`, `>`, CR or LF. */
  readonly greeting?: string | undefined;
  /** RFC 2449 IMPLEMENTATION; default `maildird`. */
  readonly implementation?: string | undefined;
  /** Offer APOP (RFC 1939 section 7) to users with PLAIN passwords; default false. */
  readonly apop?: boolean | undefined;
  /**
   * Offer SASL CRAM-MD5 (RFC 2195) to users with PLAIN passwords; default
   * false (clients that prefer it, curl among them, then fail for hashed
   * passwords). The config's `cramMd5` key, shared with SMTP.
   */
  readonly cramMd5?: boolean | undefined;
  /** Accept plaintext passwords on unencrypted non-loopback connections; default false. */
  readonly allowPlaintextAuth?: boolean | undefined;
  /** Count loopback clients as secure for plaintext passwords; default true. */
  readonly isLoopbackSecure?: boolean | undefined;
  /** RFC 2449 LOGIN-DELAY, enforced per user; default 0 (off). */
  readonly loginDelaySeconds?: number | undefined;
  /**
   * Failed-login delays (per address, growing; per user, capped). Pass the
   * one the SMTP front-end uses so both count the same failures. Default: a
   * new LoginThrottle with the default policy.
   */
  readonly throttle?: LoginThrottle | undefined;
  /**
   * LOGIN-DELAY bookkeeping; pass one to share it between servers. Default:
   * one built from loginDelaySeconds. Its `seconds` wins over loginDelaySeconds.
   */
  readonly loginDelay?: LoginDelay | undefined;
  /**
   * Where maxConnections and maxConnectionsPerIp are counted. Default: this
   * server's own connections; `maildird serve` with several workers passes
   * one that asks the primary, which counts for every worker.
   */
  readonly connectionGate?: ConnectionGate | undefined;
  /** SASL mechanisms to offer (RFC 5034), subject to what each connection allows and `cramMd5`; default PLAIN, LOGIN, CRAM-MD5. */
  readonly saslMechanisms?: readonly string[] | undefined;
  /** Test hooks: timers (idle, line, drain, close, handshake) and the clock (LOGIN-DELAY, durations). */
  readonly timers?: Timers | undefined;
  readonly now?: (() => number) | undefined;
}

export interface Pop3ListenOptions {
  readonly implicitTls?: boolean;
}

const DEFAULT_SASL = ['PLAIN', 'LOGIN', 'CRAM-MD5'] as const;

export class Pop3Server extends EventEmitter<Pop3ServerEvents> {
  readonly config: Pop3SessionConfig;
  readonly #options: Pop3ServerOptions;
  readonly #logger: Logger;
  readonly #tls: TlsContextHolder | undefined;
  readonly #loginDelay: LoginDelay;
  readonly #throttle: LoginThrottle;
  readonly #base: ProtocolServer;
  readonly #now: () => number;

  constructor(options: Pop3ServerOptions) {
    super();
    this.#options = options;
    this.#logger = options.logger ?? silentLogger();
    this.#tls = options.tls === undefined ? undefined : TlsContextHolder.from(options.tls);
    this.#now = options.now ?? Date.now;
    this.config = resolveConfig(options, this.#tls !== undefined);
    this.#loginDelay = options.loginDelay ?? new LoginDelay({ seconds: this.config.loginDelaySeconds, now: this.#now });
    this.#throttle = options.throttle ?? new LoginThrottle({ now: this.#now });
    const limits = this.config.limits;
    const timers = options.timers ?? realTimers;
    const sink: Pop3EventSink = {
      emit: (event, ...args) => {
        try {
          (this.emit as (name: string, ...payload: unknown[]) => boolean)(event, ...args);
        } catch (err) {
          this.#logger.error({ err, event }, 'a pop3 event listener threw');
        }
      },
    };
    this.#base = new ProtocolServer({
      protocol: 'pop3',
      limits: {
        maxConnections: limits.maxConnections,
        maxConnectionsPerIp: limits.maxConnectionsPerIp,
        closeTimeoutMs: limits.closeTimeoutMs,
      },
      connection: {
        maxLineLength: limits.maxLineLength,
        idleTimeoutMs: limits.idleTimeoutMs,
        lineTimeoutMs: limits.lineTimeoutMs,
        handshakeTimeoutMs: limits.handshakeTimeoutMs,
        writeHighWaterMark: limits.writeHighWaterMark,
        lingerMs: limits.lingerMs,
        timers,
      },
      tls: this.#tls,
      logger: this.#logger,
      gate: options.connectionGate,
      handler: {
        session: async (connection) => {
          const session = new Pop3Session({
            connection,
            config: this.config,
            store: options.store,
            users: options.users,
            logger: this.#logger.child({ proto: 'pop3', cid: connection.id, remote: connection.remoteAddress }),
            loginDelay: this.#loginDelay,
            throttle: this.#throttle,
            tls: this.#tls,
            events: sink,
            now: this.#now,
            timers,
          });
          await session.run();
        },
        refusal: (reason: RefusalReason) => errLine(REFUSALS[reason], 'SYS/TEMP'),
      },
    });
  }

  /** Open connections right now. */
  get connectionCount(): number {
    return this.#base.connectionCount;
  }

  /**
   * Listen on `host:port` (port 0: any free port). May be called more than
   * once, e.g. 110 plain and 995 implicit TLS: the listeners share limits,
   * LOGIN-DELAY and close().
   */
  listen(port: number, host = '127.0.0.1', options: Pop3ListenOptions = {}): Promise<AddressInfo> {
    return this.#base.listen(port, host, { implicitTls: options.implicitTls ?? this.#options.implicitTls ?? false });
  }

  /** Swap the certificate (renewal): new handshakes use it; sessions already encrypted keep theirs. */
  updateTls(material: TlsMaterial | SecureContext): void {
    if (this.#tls === undefined) throw new ConfigError('this POP3 server was created without TLS', { key: 'tls' });
    this.#tls.update(material);
  }

  /**
   * Stop accepting, let each session finish its current command and tell
   * it `-ERR [SYS/TEMP] Server shutting down`, drop what is left after
   * limits.closeTimeoutMs. Maildrops are released, nothing is deleted.
   */
  close(): Promise<void> {
    return this.#base.close();
  }
}

const REFUSALS: Record<RefusalReason, string> = {
  'global-limit': 'Too many connections, try again later',
  'per-ip-limit': 'Too many connections from your address, try again later',
  'shutting-down': 'Server shutting down',
};

export function createPop3Server(options: Pop3ServerOptions): Pop3Server {
  return new Pop3Server(options);
}

function resolveConfig(options: Pop3ServerOptions, isTlsConfigured: boolean): Pop3SessionConfig {
  const limits: Pop3Limits = Object.freeze({ ...DEFAULT_POP3_LIMITS, ...definedOnly(options.limits ?? {}) });
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new ConfigError(`limits.${key} must be a non-negative integer, got ${String(value)}`, { key: `limits.${key}` });
    }
  }
  if (limits.maxLineLength < 8) throw new ConfigError('limits.maxLineLength must be at least 8', { key: 'limits.maxLineLength' });
  const greeting = options.greeting ?? 'maildird POP3 server ready';
  if (/[<>\r\n]/.test(greeting)) {
    throw new ConfigError('the POP3 greeting may not contain <, >, CR or LF', { key: 'greeting.pop3' });
  }
  const hostname = options.hostname ?? osHostname();
  if (!/^[\x21-\x7e]+$/.test(hostname) || /[<>]/.test(hostname)) {
    throw new ConfigError(`invalid hostname ${JSON.stringify(hostname)}`, { key: 'hostname' });
  }
  const loginDelaySeconds = options.loginDelay?.seconds ?? options.loginDelaySeconds ?? 0;
  if (!Number.isInteger(loginDelaySeconds) || loginDelaySeconds < 0) {
    throw new ConfigError('loginDelaySeconds must be a non-negative integer', { key: 'loginDelaySeconds' });
  }
  return Object.freeze({
    hostname,
    greeting,
    implementation: options.implementation ?? 'maildird',
    isApopEnabled: options.apop ?? false,
    isCramMd5Enabled: options.cramMd5 ?? false,
    allowPlaintextAuth: options.allowPlaintextAuth ?? false,
    isLoopbackSecure: options.isLoopbackSecure ?? true,
    isTraceEnabled: options.trace ?? true,
    loginDelaySeconds,
    isTlsConfigured,
    saslMechanisms: Object.freeze([...(options.saslMechanisms ?? DEFAULT_SASL)].map((m) => m.toUpperCase())),
    limits,
  });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
