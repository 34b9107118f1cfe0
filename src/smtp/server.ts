/**
 * createSmtpServer: an SMTP, submission, SMTPS or LMTP listener on
 * nodemailer's smtp-server (DESIGN.md "Sessions and protocols"). smtp-server
 * speaks the protocol; this module configures it fully and supplies the
 * policy (recipient-policy.ts), authentication (the shared Authenticator,
 * the same code POP3 uses), the message checks (data-inspector.ts) and
 * delivery (delivery.ts, or a library hook: hooks.ts).
 *
 * One server is one listener. The lead wires, per DESIGN.md's defaults:
 *   inbound     { authOffered: 'tls-or-loopback' }            (AUTH never required)
 *   submission  { requireAuth: true }                          (STARTTLS, then AUTH)
 *   smtps       { requireAuth: true, implicitTls: true }
 *   lmtp        { lmtp: true, authOffered: 'never' }
 */
import { reverse as dnsReverse } from 'node:dns';
import { EventEmitter } from 'node:events';
import type { AddressInfo, ListenOptions } from 'node:net';
import { Readable } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { simpleParser } from 'mailparser';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataResult,
  SMTPServerDataStream,
  SMTPServerOptions,
  SMTPServerResolver,
  SMTPServerSession,
} from 'smtp-server';
import type { Authenticator } from '../auth/authenticator.js';
import { LoginThrottle } from '../auth/throttle.js';
import type { ConnectionGate } from '../protocol/connection-gate.js';
import { ConfigError, isStorageError, SmtpReplyError } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { isLoopbackAddress } from '../protocol/address.js';
import { realTimers, type Timers } from '../protocol/timers.js';
import { TlsContextHolder, type TlsOption } from '../protocol/tls.js';
import type { MailStore, MailUser } from '../storage/store.js';
import type { AliasTable } from './aliases.js';
import { DISABLED_COMMANDS, MaildirdSmtpCore, type MaildirdConnection } from './connection.js';
import { InspectedContent } from './content.js';
import { DataInspector } from './data-inspector.js';
import type { SmtpEventSink, SmtpServerEvents } from './events.js';
import { filterContent, type FilterSettings } from './filter.js';
import { deliverToStore, summarise, type AcceptedRecipient, type RecipientResult } from './delivery.js';
import type { MailFromHook, MessageHandler, MessageResult, RcptToHook, ReceivedMessage, SessionInfo } from './hooks.js';
import { smtpServerLogger } from './log-adapter.js';
import { nextQueueId } from './queue-id.js';
import { traceHeaders, type TraceInfo } from './received.js';
import { RecipientPolicy } from './recipient-policy.js';
import { REPLIES, replyOf, toServerError, toSmtpReply, withText, type ServerReplyError } from './replies.js';

export type AuthOffered = 'always' | 'tls-or-loopback' | 'never';

export interface SmtpLimits {
  /** Largest message in octets: SIZE in EHLO, MAIL SIZE= and the real size (552 5.3.4). */
  readonly maxMessageBytes: number;
  /** RCPTs per transaction; more get 452 4.5.3 (RFC 5321 4.5.3.1.10). */
  readonly maxRecipients: number;
  /**
   * Transactions per connection; the next MAIL gets 421 4.7.0. 0: no limit.
   * Default 1000, Exim's smtp_accept_max_per_connection (Postfix's smtpd has
   * no such limit): an MTA with a queue for us keeps its connection, and
   * Postfix's smtp-source aborts on the 421 rather than reconnect.
   */
  readonly maxMessagesPerConnection: number;
  /** Connections open at once on this listener (421 before the greeting). 0: no limit. */
  readonly maxConnections: number;
  /** Connections open at once from one address (421 4.7.0). 0: no limit. */
  readonly maxConnectionsPerIp: number;
  /** Waiting for a command; only complete command lines reset it (RFC 5321 4.5.3.2.7: 5 minutes). */
  readonly idleTimeoutMs: number;
  /** From the first byte of a command line to its end. */
  readonly lineTimeoutMs: number;
  /** DATA: each window of this length must bring at least minDataRate * window octets. */
  readonly dataWindowMs: number;
  /** Minimum DATA rate in octets per second (Postfix's smtpd_min_data_rate). */
  readonly minDataRate: number;
  /** 5xx replies before the connection is closed with 421 4.7.0 (Postfix's smtpd_hard_error_limit). */
  readonly maxErrors: number;
  /** Commands before AUTH where AUTH is required (smtp-server's limit; then 421). */
  readonly maxUnauthenticatedCommands: number;
  /** Longest command line in octets, CRLF included (RFC 5321 4.5.3.1.4: 512). */
  readonly maxLineLength: number;
  /** Most Received headers a message may carry (RFC 5321 6.3; Postfix's hopcount_limit). */
  readonly maxHops: number;
  /** close(): how long sessions may finish before the rest get 421 and are dropped. */
  readonly closeTimeoutMs: number;
}

export const DEFAULT_SMTP_LIMITS: SmtpLimits = Object.freeze({
  maxMessageBytes: 25 * 1024 * 1024,
  maxRecipients: 100,
  maxMessagesPerConnection: 1000,
  maxConnections: 1000,
  maxConnectionsPerIp: 20,
  idleTimeoutMs: 300_000,
  lineTimeoutMs: 60_000,
  dataWindowMs: 60_000,
  minDataRate: 100,
  maxErrors: 20,
  maxUnauthenticatedCommands: 10,
  maxLineLength: 512,
  maxHops: 50,
  closeTimeoutMs: 30_000,
});

export interface SmtpServerOptions {
  readonly store: MailStore;
  /** The user database (AUTH and recipient lookups): the same Authenticator POP3 uses. */
  readonly users: Authenticator;
  /** Local domains; a bare user name receives mail in each. Ignored when `policy` is given. */
  readonly localDomains?: readonly string[] | undefined;
  readonly aliases?: AliasTable | undefined;
  /** A ready recipient policy (shared between listeners); default: one from localDomains and aliases. */
  readonly policy?: RecipientPolicy | undefined;
  /** Certificate pair: STARTTLS is offered only with one (smtp-server's built-in pair has a public key). */
  readonly tls?: TlsOption | undefined;
  /** SMTPS (RFC 8314): TLS from the first byte. Needs `tls`. */
  readonly implicitTls?: boolean | undefined;
  /** LMTP (RFC 2033): LHLO, one reply per recipient after DATA. */
  readonly lmtp?: boolean | undefined;
  /** MAIL before AUTH gets 530 5.7.0 (RFC 4954 section 6; RFC 6409 for submission). */
  readonly requireAuth?: boolean | undefined;
  /**
   * Where AUTH is offered: 'tls-or-loopback' (default; plaintext passwords
   * never cross a network unencrypted), 'always', or 'never'.
   */
  readonly authOffered?: AuthOffered | undefined;
  /**
   * Offer AUTH CRAM-MD5 (RFC 2195) while some user has a PLAIN password;
   * default false (clients that prefer it, curl among them, then fail for
   * hashed passwords). The config's `cramMd5` key, shared with POP3.
   */
  readonly cramMd5?: boolean | undefined;
  /** Our name in the greeting, EHLO and Received headers. */
  readonly hostname?: string | undefined;
  /** Text after `220 <hostname> ESMTP`. */
  readonly banner?: string | undefined;
  /** EHLO/HELO reply format: first %s our name, second the client's name as we know it (reverse DNS or `[address]`). */
  readonly heloResponse?: string | undefined;
  readonly limits?: Partial<SmtpLimits> | undefined;
  readonly logger?: Logger | undefined;
  /**
   * Log every command and reply (`C: ...`/`S: ...`, AUTH payloads masked) at
   * debug level; default true (the logger's level still decides). The
   * config's `trace` key, as for POP3.
   */
  readonly trace?: boolean | undefined;
  /**
   * The failed-login slowdown (src/auth/throttle.ts); pass POP3's instance so
   * both front-ends share one budget per address and user. Default: a new
   * LoginThrottle with the default policy.
   */
  readonly throttle?: LoginThrottle | undefined;
  /**
   * Where maxConnectionsPerIp and maxConnections are counted instead of
   * here: `maildird serve` with several workers passes one that asks the
   * primary, which counts for every worker (src/cli/cluster).
   */
  readonly connectionGate?: ConnectionGate | undefined;
  /** Over quota as 452 4.2.2 instead of 552 5.2.2. */
  readonly quotaIsTemporary?: boolean | undefined;
  /** Reverse DNS of clients for Received headers (default on). */
  readonly reverseLookup?: boolean | undefined;
  readonly resolver?: SMTPServerResolver | undefined;
  /**
   * Behind a proxy (HAProxy) that sends a PROXY protocol v1 header: true
   * for every peer, or the proxies' addresses. The client address it names
   * is the one policies, limits and Received headers see.
   */
  readonly proxyProtocol?: boolean | readonly string[] | undefined;
  readonly onMailFrom?: MailFromHook | undefined;
  readonly onRcptTo?: RcptToHook | undefined;
  /**
   * Pre-delivery filter (filter.ts): a command that sees each message before
   * the store and accepts (adding headers), rejects or defers it. Only with
   * the default 'store' handler.
   */
  readonly filter?: FilterSettings | undefined;
  /** What happens to a message: stored (default), raw stream, or parsed. */
  readonly onMessage?: MessageHandler | undefined;
  /** Timers for the idle, line and DATA clocks (tests fire them by hand). */
  readonly timers?: Timers | undefined;
  /** Clock for Received dates and the log's `ms`. */
  readonly now?: (() => Date) | undefined;
}

/** Live TLS contexts: '*' is always the holder's current context, so certificate renewal needs no restart. */
class LiveContexts extends Map<string, SecureContext> {
  readonly #holder: TlsContextHolder;
  constructor(holder: TlsContextHolder) {
    super();
    this.#holder = holder;
  }
  override get(key: string): SecureContext | undefined {
    return key === '*' ? this.#holder.current : super.get(key);
  }
}

/** Per-session transaction state: the recipients accepted so far, by lower-cased address. */
type Transaction = Map<string, AcceptedRecipient>;

export class SmtpServer extends EventEmitter<SmtpServerEvents> {
  readonly policy: RecipientPolicy;
  readonly lmtp: boolean;
  readonly #options: SmtpServerOptions;
  readonly #limits: SmtpLimits;
  readonly #logger: Logger;
  readonly #core: MaildirdSmtpCore;
  readonly #tls: TlsContextHolder | undefined;
  readonly #authOffered: AuthOffered;
  readonly #hasStartTls: boolean;
  readonly #hostname: string;
  readonly #serverDisabled: readonly string[];
  readonly #transactions = new WeakMap<SMTPServerSession, Transaction>();
  readonly #now: () => Date;
  readonly #timers: Timers;
  readonly #throttle: LoginThrottle;
  /** Sessions counted by options.connectionGate, released when they close. */
  readonly #gated = new Map<string, string>();
  /** Messages being handled (a client may have gone; the store may still be writing). */
  readonly #inFlight = new Set<Promise<unknown>>();
  #listening = false;
  readonly #events: SmtpEventSink = {
    emit: (event, ...args) => {
      try {
        (this.emit as (name: string, ...payload: unknown[]) => boolean)(event, ...args);
      } catch (err) {
        this.#logger.error({ err, event }, 'an smtp event listener threw');
      }
    },
  };

  constructor(options: SmtpServerOptions) {
    super();
    this.#options = options;
    this.lmtp = options.lmtp === true;
    this.#limits = { ...DEFAULT_SMTP_LIMITS, ...definedOnly(options.limits ?? {}) };
    this.#logger = (options.logger ?? silentLogger()).child({ proto: this.lmtp ? 'lmtp' : 'smtp' });
    this.#now = options.now ?? (() => new Date());
    this.#timers = options.timers ?? realTimers;
    this.#throttle = options.throttle ?? new LoginThrottle({ now: () => this.#now().getTime() });
    this.#hostname = options.hostname ?? 'localhost';
    this.#tls = options.tls === undefined ? undefined : TlsContextHolder.from(options.tls);
    this.#authOffered = options.authOffered ?? 'tls-or-loopback';
    if (options.implicitTls === true && this.#tls === undefined) {
      throw new ConfigError('implicit TLS (SMTPS) needs a certificate and key', { key: 'tls' });
    }
    if (options.requireAuth === true && this.#authOffered === 'never') {
      throw new ConfigError('requireAuth with AUTH never offered would refuse every message', { key: 'requireAuth' });
    }
    this.policy =
      options.policy ??
      new RecipientPolicy({ users: options.users, localDomains: options.localDomains ?? [], aliases: options.aliases });
    this.#hasStartTls = this.#tls !== undefined && options.implicitTls !== true;
    const disabled: string[] = [...DISABLED_COMMANDS];
    if (!this.#hasStartTls) disabled.push('STARTTLS');
    if (this.#authOffered === 'never') disabled.push('AUTH');
    this.#serverDisabled = disabled;

    const limits = this.#limits;
    const traceOn = options.trace ?? true;
    const authMethods = this.#authMethods();
    const serverOptions: SMTPServerOptions = {
      name: this.#hostname,
      ...(options.banner === undefined ? {} : { banner: options.banner }),
      ...(options.heloResponse === undefined ? {} : { heloResponse: options.heloResponse }),
      lmtp: this.lmtp,
      secure: options.implicitTls === true,
      // smtp-server passes its options to net.createServer: a client's FIN
      // must not end our side before the replies it is owed are written
      // (connection.ts ends it then). TLS sockets inherit it from the TCP socket.
      allowHalfOpen: true,
      // STARTTLS only with a real pair (see PEERS.md); the contexts come from LiveContexts.
      ...(this.#tls === undefined
        ? { hideSTARTTLS: true }
        : { SNICallback: (_name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, this.#tls?.current) }),
      disabledCommands: disabled,
      authMethods,
      // We decide per connection where AUTH is offered (session.disabledCommands), so
      // smtp-server's server-wide "STARTTLS first" rule is off.
      allowInsecureAuth: true,
      authOptional: options.requireAuth !== true,
      authRequiredMessage: `${REPLIES.authRequired.enhanced} ${REPLIES.authRequired.text}`,
      maxAllowedUnauthenticatedCommands: limits.maxUnauthenticatedCommands,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      hidePIPELINING: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      size: limits.maxMessageBytes,
      maxRecipients: limits.maxRecipients,
      maxClients: limits.maxConnections > 0 ? limits.maxConnections : undefined,
      // smtp-server's own clock (any byte resets it) stays as the outer guard,
      // and bounds TLS handshakes.
      socketTimeout: Math.max(limits.idleTimeoutMs, limits.dataWindowMs),
      closeTimeout: limits.closeTimeoutMs,
      maxCommandLength: Math.max(limits.maxLineLength - 2, 510),
      disableReverseLookup: options.reverseLookup === false,
      resolver: localFirstResolver(options.resolver),
      ...(options.proxyProtocol === undefined
        ? {}
        : { useProxy: typeof options.proxyProtocol === 'boolean' ? options.proxyProtocol : [...options.proxyProtocol] }),
      logger: this.#logger.level !== 'silent' ? smtpServerLogger(this.#logger, traceOn) : false,
      onConnect: (session, cb) => this.#onConnect(session, cb),
      onClose: (session) => this.#onClose(session),
      onSecure: (_socket, session, cb) => this.#onSecure(session, cb),
      onAuth: (auth, session, cb) => void this.#onAuth(auth, session).then((r) => cb(r.err, r.response)),
      onMailFrom: (address, session, cb) => void this.#onMailFrom(address, session).then(cb),
      onRcptTo: (address, session, cb) => void this.#onRcptTo(address, session).then(cb),
      onData: (stream, session, cb) => this.#onData(stream, session, cb),
    };
    this.#core = new MaildirdSmtpCore(serverOptions, {
      timeouts: {
        timers: this.#timers,
        idleTimeoutMs: limits.idleTimeoutMs,
        lineTimeoutMs: limits.lineTimeoutMs,
        dataWindowMs: limits.dataWindowMs,
        minDataBytesPerWindow: Math.floor((limits.minDataRate * limits.dataWindowMs) / 1000),
      },
      maxErrors: limits.maxErrors,
      authConfigured: this.#authOffered !== 'never',
      lmtp: this.lmtp,
      events: this.#events,
    });
    if (this.#tls !== undefined) this.#core.secureContext = new LiveContexts(this.#tls);
    this.#core.on('error', (err: Error) => this.#logger.warn({ err }, 'smtp server error'));
  }

  get limits(): SmtpLimits {
    return this.#limits;
  }

  /** Open connections. */
  get connections(): number {
    return this.#core.connections.size;
  }

  /** Listen on `{ port, host }` (port 0: any free port) or `{ path }` (a Unix socket, for LMTP). */
  listen(target: ListenOptions): Promise<AddressInfo | string> {
    return new Promise((resolve, reject) => {
      const server = this.#core.server;
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      this.#core.listen(target, () => {
        server.off('error', onError);
        this.#listening = true;
        const address = server.address();
        resolve(address ?? '');
      });
    });
  }

  address(): AddressInfo | string | null {
    return this.#core.server.address();
  }

  /**
   * Stop accepting; sessions may finish (commands after this get 421) until
   * closeTimeoutMs, then the rest get 421 and are closed.
   */
  async close(): Promise<void> {
    if (this.#listening) {
      this.#listening = false;
      await new Promise<void>((resolve) => this.#core.close(() => resolve()));
    }
    // A message whose client went away may still be in the store's hands.
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #connection(session: SMTPServerSession): MaildirdConnection | undefined {
    return this.#core.connectionOf(session);
  }

  #isAuthOffered(session: SMTPServerSession): boolean {
    switch (this.#authOffered) {
      case 'never':
        return false;
      case 'always':
        return true;
      case 'tls-or-loopback':
        return session.secure || isLoopbackAddress(session.remoteAddress);
      default:
        return assertNever(this.#authOffered);
    }
  }

  /** session.disabledCommands replaces the server-wide list for this connection (smtp-server 3.21). */
  #applyCommandSet(session: SMTPServerSession): void {
    session.disabledCommands = this.#isAuthOffered(session) ? [...this.#serverDisabled] : [...this.#serverDisabled, 'AUTH'];
  }

  /** CRAM-MD5 only when turned on and while some user has a PLAIN secret (the users file may have been reloaded). */
  #authMethods(): string[] {
    return this.#options.cramMd5 === true && this.#options.users.hasSharedSecrets() ? ['PLAIN', 'LOGIN', 'CRAM-MD5'] : ['PLAIN', 'LOGIN'];
  }

  #onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const connection = this.#connection(session);
    const perIp = this.#limits.maxConnectionsPerIp;
    // A Unix socket (LMTP from the local MTA) has no address to count by.
    const from = connection?.acceptedFrom ?? '';
    const gate = this.#options.connectionGate;
    if (gate !== undefined && from !== '') {
      // Counted now, so a close while the answer is on its way releases it (the gate sees both in order).
      this.#gated.set(session.id, from);
      void Promise.resolve(gate.admit(from)).then(
        (refusal) => {
          if (refusal === undefined) return this.#admitted(session, cb);
          this.#logger.info({ cid: session.id, remote: session.remoteAddress, reason: refusal }, 'refused: connection limit');
          cb(toServerError(replyOf(REPLIES.tooManyFromAddress)));
        },
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
      return;
    }
    if (from !== '' && connection !== undefined && perIp > 0 && this.#core.rankFromAddress(connection) > perIp) {
      this.#logger.info({ cid: session.id, remote: session.remoteAddress }, 'refused: too many connections from this address');
      cb(toServerError(replyOf(REPLIES.tooManyFromAddress)));
      return;
    }
    this.#admitted(session, cb);
  }

  #admitted(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    this.#applyCommandSet(session);
    this.#core.options.authMethods = this.#authMethods();
    cb();
  }

  #onClose(session: SMTPServerSession): void {
    const from = this.#gated.get(session.id);
    if (from === undefined) return;
    this.#gated.delete(session.id);
    this.#options.connectionGate?.release(from);
  }

  #onSecure(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    this.#applyCommandSet(session);
    cb();
  }

  async #onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
  ): Promise<{ err: Error | null; response?: SMTPServerAuthenticationResponse }> {
    const remote = session.remoteAddress;
    const login = auth.username ?? '';
    const throttleUser = login === '' ? undefined : login;
    try {
      // Served before the check, not only before the failure reply
      // (src/auth/throttle.ts): hanging up early buys an attacker nothing.
      const delayMs = this.#throttle.attemptDelayMs(remote, throttleUser);
      if (delayMs > 0) {
        this.#logger.debug({ cid: session.id, delayMs }, 'failed-login delay');
        await new Promise<void>((resolve) => this.#timers.start('auth-delay', delayMs, resolve));
      }
      const user = await this.#verify(auth);
      if (user === undefined) {
        const nextDelayMs = this.#throttle.recordFailure(remote, throttleUser);
        this.#logger.info({ cid: session.id, remote, login, mechanism: auth.method, nextDelayMs }, 'authentication failed');
        this.#events.emit('login-failed', { sessionId: session.id, login, mechanism: auth.method });
        return { err: null, response: { message: `${REPLIES.authFailed.enhanced} ${REPLIES.authFailed.text}`, responseCode: 535 } };
      }
      this.#throttle.recordSuccess(remote, throttleUser);
      this.#logger.info({ cid: session.id, remote, user: user.name, mechanism: auth.method }, 'login');
      this.#events.emit('login', { sessionId: session.id, user: user.name, mechanism: auth.method });
      return { err: null, response: { user: user.name } };
    } catch (err) {
      this.#logger.error({ err, cid: session.id }, 'authentication check failed');
      return { err: toServerError(new SmtpReplyError(454, '4.7.0', 'Temporary authentication failure')) };
    }
  }

  /** The credential check: the shared Authenticator, as POP3 uses it. */
  async #verify(auth: SMTPServerAuthentication): Promise<MailUser | undefined> {
    const login = auth.username ?? '';
    switch (auth.method) {
      case 'PLAIN':
        // RFC 4616: an authorization identity other than the login would be proxy
        // authentication, which maildird does not do.
        if (auth.authcid && auth.authzid && auth.authzid !== auth.authcid) return undefined;
        return this.#options.users.verifyPassword(login, auth.password ?? '');
      case 'LOGIN':
        return this.#options.users.verifyPassword(login, auth.password ?? '');
      case 'CRAM-MD5':
        return this.#options.users.verifyDigest('CRAM-MD5', login, auth.challenge ?? '', auth.challengeResponse ?? '');
      default:
        return undefined;
    }
  }

  async #onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<Error | null> {
    const maxMessages = this.#limits.maxMessagesPerConnection;
    if (maxMessages > 0 && session.transaction > maxMessages) return toServerError(replyOf(REPLIES.tooManyMessages));
    if (this.#options.requireAuth === true && !session.user) {
      const mustStartTls = this.#hasStartTls && !session.secure && !this.#isAuthOffered(session);
      return toServerError(replyOf(mustStartTls ? REPLIES.startTlsFirst : REPLIES.authRequired));
    }
    this.#transactions.set(session, new Map());
    const hook = this.#options.onMailFrom;
    if (hook === undefined) return null;
    try {
      const decision = await hook({ address: address.address, parameters: address.args || {}, session: sessionInfo(session) });
      if (decision?.action === 'reject') return toServerError(decision.reply);
      return null;
    } catch (err) {
      return toServerError(this.#hookFailure(err, session, 'onMailFrom'));
    }
  }

  async #onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<Error | null> {
    const resolution = this.policy.resolve(address.address);
    let accepted: AcceptedRecipient | undefined = resolution.ok ? { address: address.address, users: resolution.users } : undefined;
    let refusal: SmtpReplyError | undefined = resolution.ok ? undefined : resolution.reply;
    const hook = this.#options.onRcptTo;
    if (hook !== undefined) {
      try {
        const decision = await hook({ address: address.address, session: sessionInfo(session), policy: resolution });
        if (decision?.action === 'reject') {
          accepted = undefined;
          refusal = decision.reply;
        } else if (decision?.action === 'accept') {
          accepted = { address: address.address, users: decision.users ?? (resolution.ok ? resolution.users : []) };
          refusal = undefined;
        }
      } catch (err) {
        return toServerError(this.#hookFailure(err, session, 'onRcptTo'));
      }
    }
    const storing = (this.#options.onMessage?.mode ?? 'store') === 'store';
    if (accepted !== undefined && storing && accepted.users.length === 0) {
      refusal = withText(REPLIES.unknownUser, `<${address.address}>: no local mailbox`);
      accepted = undefined;
    }
    if (accepted === undefined) {
      this.#logger.debug({ cid: session.id, rcpt: address.address, reply: refusal?.replyCode }, 'recipient refused');
      return toServerError(refusal ?? replyOf(REPLIES.unknownUser));
    }
    let transaction = this.#transactions.get(session);
    if (transaction === undefined) {
      transaction = new Map();
      this.#transactions.set(session, transaction);
    }
    transaction.set(address.address.toLowerCase(), accepted);
    return null;
  }

  #hookFailure(err: unknown, session: SMTPServerSession, hook: string): SmtpReplyError {
    if (err instanceof SmtpReplyError) return err;
    this.#logger.error({ err, cid: session.id, hook }, 'hook failed');
    return replyOf(REPLIES.temporary);
  }

  #onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null, message?: string | SMTPServerDataResult[]) => void,
  ): void {
    const connection = this.#connection(session);
    // The final "." ends the client's part: from here the server works, no clock runs.
    stream.once('end', () => connection?.timeouts.dataEnded());
    const receiving = this.#receive(stream, session).then((reply) => {
      connection?.timeouts.waitForCommand();
      cb(reply.err, reply.message);
    });
    this.#inFlight.add(receiving);
    void receiving.finally(() => this.#inFlight.delete(receiving));
  }

  /** Run the message through the checks and the handler; never rejects. */
  async #receive(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
  ): Promise<{ err?: Error; message?: string | SMTPServerDataResult[] }> {
    const started = this.#now().getTime();
    const queueId = nextQueueId();
    const transaction = this.#transactions.get(session);
    const mailFrom = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
    const recipients = session.envelope.rcptTo.map(
      (rcpt): AcceptedRecipient => transaction?.get(rcpt.address.toLowerCase()) ?? { address: rcpt.address, users: [] },
    );
    const info = sessionInfo(session);
    const trace: TraceInfo = {
      mailFrom,
      helo: info.helo ?? 'unknown',
      clientHostname: info.clientHostname === '' ? undefined : info.clientHostname,
      remoteAddress: info.remoteAddress === '' ? undefined : info.remoteAddress,
      hostname: this.#hostname,
      protocol: info.protocol,
      tls: info.tls,
      queueId,
      date: this.#now(),
    };
    const inspector = new DataInspector({
      maxBytes: this.#limits.maxMessageBytes,
      maxReceived: this.#limits.maxHops,
      strictLineEnds: true,
    });
    const content = new InspectedContent(stream, inspector);
    let results: readonly RecipientResult[] | undefined;
    let failure: SmtpReplyError | undefined;
    try {
      results = await this.#handle({ queueId, mailFrom, recipients, session: info, traceHeaders: (rcpt) => traceHeaders(trace, rcpt) }, content, trace);
    } catch (err) {
      if (inspector.failure === undefined && content.sourceError === undefined) {
        if (!(err instanceof SmtpReplyError)) this.#logger.error({ err, cid: session.id, queueId }, 'message handling failed');
        failure = toSmtpReply(err, this.#replyOptions());
      }
    }
    await content.drain();
    // The checks win over whatever the handler said: nothing in a refused message counts.
    const violation = inspector.failure ?? (stream.sizeExceeded ? replyOf(REPLIES.tooLarge) : undefined);
    if (violation !== undefined) failure = violation;
    if (failure === undefined && content.sourceError !== undefined) {
      // The client left mid-message; nobody will read a reply.
      failure = replyOf(REPLIES.temporary);
    }
    const finalResults: readonly RecipientResult[] =
      failure !== undefined || results === undefined
        ? recipients.map(() => ({ ok: false, reply: failure ?? replyOf(REPLIES.temporary) }))
        : results;
    this.#logOutcome(session, queueId, mailFrom, recipients, finalResults, inspector.bytes, started, failure);
    return this.#reply(queueId, recipients, finalResults);
  }

  async #handle(message: ReceivedMessage, content: InspectedContent, trace: TraceInfo): Promise<readonly RecipientResult[]> {
    const handler = this.#options.onMessage ?? { mode: 'store' as const };
    switch (handler.mode) {
      case 'store': {
        const filter = this.#options.filter;
        const delivered = await deliverToStore({
          store: this.#options.store,
          recipients: message.recipients,
          content:
            filter === undefined
              ? content
              : await filterContent(
                  { ...filter, logger: this.#logger.child({ cid: message.session.id }), timers: this.#timers },
                  content,
                  trace,
                  message.recipients.map((r) => r.address),
                ),
          trace,
          maxBytes: this.#limits.maxMessageBytes,
          replyOptions: this.#replyOptions(),
        });
        for (const result of delivered.results) {
          if (result.ok || result.error === undefined) continue;
          // A full mailbox or a big message is the user's business; anything else is a storage failure.
          const expected = isStorageError(result.error, 'quota') || isStorageError(result.error, 'too-large');
          this.#logger[expected ? 'info' : 'error']({ err: result.error, queueId: message.queueId }, 'delivery failed');
        }
        return delivered.results;
      }
      case 'raw':
        return toResults(await handler.handle(message, Readable.from(content)), message.recipients.length);
      case 'parsed': {
        const parsed = await simpleParser(Readable.from(content));
        return toResults(await handler.handle(message, parsed), message.recipients.length);
      }
      default:
        return assertNever(handler);
    }
  }

  #reply(
    queueId: string,
    recipients: readonly AcceptedRecipient[],
    results: readonly RecipientResult[],
  ): { err?: Error; message?: string | SMTPServerDataResult[] } {
    if (this.lmtp) {
      // RFC 2033 4.2: one reply per accepted RCPT, in order.
      return {
        message: results.map((result, i): SMTPServerDataResult =>
          result.ok ? `2.0.0 <${recipients[i]?.address ?? ''}> Ok: delivered as ${queueId}` : (toServerError(result.reply) as ServerReplyError),
        ),
      };
    }
    const failure = summarise(results);
    if (failure !== undefined) return { err: toServerError(failure) };
    return { message: `2.0.0 Ok: queued as ${queueId}` };
  }

  #logOutcome(
    session: SMTPServerSession,
    queueId: string,
    mailFrom: string,
    recipients: readonly AcceptedRecipient[],
    results: readonly RecipientResult[],
    size: number,
    started: number,
    failure: SmtpReplyError | undefined,
  ): void {
    const delivered = recipients.filter((_r, i) => results[i]?.ok === true).map((r) => r.address);
    const tls = session.tlsOptions === false ? false : session.tlsOptions.version;
    const user = typeof session.user === 'string' ? session.user : undefined;
    const ms = this.#now().getTime() - started;
    this.#events.emit('message', {
      sessionId: session.id,
      queueId,
      delivered: delivered.length,
      refused: recipients.length - delivered.length,
      size,
      durationMs: ms,
    });
    if (delivered.length > 0) {
      this.#logger.info({ cid: session.id, queueId, from: mailFrom, rcpts: delivered, size, ms, tls, user }, 'message accepted');
    }
    if (delivered.length < recipients.length) {
      const reply = failure ?? summarise(results);
      this.#logger.info(
        { cid: session.id, queueId, from: mailFrom, size, ms, reply: reply === undefined ? undefined : `${reply.replyCode} ${reply.enhancedCode}` },
        'message refused',
      );
    }
  }

  #replyOptions(): { quotaIsTemporary: boolean } {
    return { quotaIsTemporary: this.#options.quotaIsTemporary === true };
  }
}

export function createSmtpServer(options: SmtpServerOptions): SmtpServer {
  return new SmtpServer(options);
}

function toResults(result: MessageResult, count: number): RecipientResult[] {
  if (result === undefined) return Array.from({ length: count }, () => ({ ok: true }));
  return Array.from({ length: count }, (_v, i): RecipientResult => {
    const reply = result[i];
    return reply === undefined ? { ok: true } : { ok: false, reply: toSmtpReply(reply) };
  });
}

/**
 * Reverse DNS for Received headers, without asking DNS about this host:
 * loopback clients are `localhost`, a Unix socket has no address (smtp-server
 * would otherwise log a failed lookup for each LMTP connection).
 */
function localFirstResolver(custom: SMTPServerResolver | undefined): SMTPServerResolver {
  return {
    reverse(ip, callback) {
      if (ip === '') return callback(null, []);
      if (isLoopbackAddress(ip)) return callback(null, ['localhost']);
      if (custom !== undefined) return custom.reverse(ip, callback);
      dnsReverse(ip, (err, hostnames) => callback(err, hostnames));
    },
  };
}

function sessionInfo(session: SMTPServerSession): SessionInfo {
  const tls = session.tlsOptions === false ? undefined : { version: session.tlsOptions.version, cipher: session.tlsOptions.name };
  const helo = (session.hostNameAppearsAs as string | false) || undefined;
  // On a Unix socket (LMTP) there is no client address: smtp-server says '' and '[]'.
  const remote = session.remoteAddress;
  return {
    id: session.id,
    remoteAddress: remote,
    clientHostname: remote === '' ? '' : session.clientHostname,
    helo,
    secure: session.secure,
    tls,
    user: typeof session.user === 'string' ? session.user : undefined,
    protocol: session.transmissionType,
  };
}

function definedOnly<T extends object>(partial: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
