/**
 * One POP3 session (RFC 1939): greeting, the read-dispatch loop, state
 * transitions, and the single place where commands are looked up, checked
 * against the state and their errors mapped to replies (STYLE.md 1, 2, 7).
 *
 * Replies go into the connection's batch; the batch is flushed only when
 * no further command is buffered, so a pipelined session (RFC 2449
 * PIPELINING) is answered in order with few writes.
 */
import { Pop3Error, type Pop3ResponseCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { MailStore, MailUser, MessageInfo, OpenMessageOptions } from '../storage/store.js';
import type { Connection } from '../protocol/connection.js';
import { DotStuffer } from '../protocol/dot-stuff.js';
import type { TlsContextHolder } from '../protocol/tls.js';
import type { Timers } from '../protocol/timers.js';
import { newChallenge } from '../auth/sasl/cram-md5.js';
import type { CommandContext, SessionFacts } from './command.js';
import type { Pop3SessionConfig } from './config.js';
import { COMMAND_TABLE, COMMANDS } from './commands/index.js';
import { capabilityLines } from './capabilities.js';
import { Pop3SyntaxError } from './args.js';
import { errLine, okLine, toPop3Reply } from './replies.js';
import { assertNever, authorizationState, type Pop3State, type TransactionState } from './state.js';
import { liveTotals } from './maildrop-view.js';
import type { LoginDelay } from '../auth/login-delay.js';
import type { LoginThrottle } from '../auth/throttle.js';
import type { Pop3EventSink, SessionEndReason, SessionSummary } from './events.js';
import { readAll, ReadAhead } from './read-ahead.js';

export interface Pop3SessionDeps {
  readonly connection: Connection;
  readonly config: Pop3SessionConfig;
  readonly store: MailStore;
  readonly users: Authenticator;
  /** Child logger bound to `{ proto, cid, remote }`. */
  readonly logger: Logger;
  readonly loginDelay: LoginDelay;
  readonly throttle: LoginThrottle;
  readonly tls: TlsContextHolder | undefined;
  readonly events: Pop3EventSink;
  readonly now: () => number;
  readonly timers: Timers;
}

/** The connection went away (or stopped reading) while we were sending: nothing more can be said. */
class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError';
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const VERB = /^[A-Za-z0-9-]{1,16}$/;
const LIST_BATCH_CHARS = 64 * 1024;
/** `RETR n` as a pipelining client sends it. */
const RETR_LINE = /^retr ([0-9]{1,9}) *$/i;
/** How many following message numbers a served RETR reads ahead. */
const SEQUENTIAL_READ_AHEAD = 2;

export class Pop3Session implements CommandContext<Pop3State> {
  readonly #deps: Pop3SessionDeps;
  readonly #conn: Connection;
  #log: Logger;
  readonly #trace: boolean;
  #state: Pop3State = authorizationState();
  #isUtf8 = false;
  #apopChallenge: string | undefined;
  #closeAfterReply = false;
  #endReason: SessionEndReason | undefined;
  #badCommands = 0;
  #authFailures = 0;
  /** A multi-line reply has started: an error now cannot be answered, only the connection dropped. */
  #inMultiline = false;
  #retrievedCount = 0;
  #deletedCount = 0;
  #user: string | undefined;
  #readAhead: ReadAhead | undefined;
  /** First message the sequential read-ahead may start at (past the last one retrieved). */
  #readAheadFrom = 0;
  #isReadAheadScheduled = false;
  /** Whether the last +OK/-ERR written said +OK (continuations `+ ` leave it alone): the result of the command being run. */
  #lastReplyOk: boolean | undefined;

  constructor(deps: Pop3SessionDeps) {
    this.#deps = deps;
    this.#conn = deps.connection;
    this.#log = deps.logger;
    this.#trace = deps.config.isTraceEnabled && deps.logger.isLevelEnabled('debug');
  }

  // ---- CommandContext ---------------------------------------------------

  get state(): Pop3State {
    return this.#state;
  }

  get facts(): SessionFacts {
    const conn = this.#conn;
    return {
      isTls: conn.isTls,
      isLoopback: conn.isLoopback,
      remoteAddress: conn.remoteAddress,
      isUtf8: this.#isUtf8,
      canStartTls: this.#deps.config.isTlsConfigured && this.#deps.tls !== undefined && !conn.isTls,
      isPlaintextAllowed:
        conn.isTls || (conn.isLoopback && this.#deps.config.isLoopbackSecure) || this.#deps.config.allowPlaintextAuth,
      apopChallenge: this.#apopChallenge,
    };
  }

  get config(): Pop3SessionConfig {
    return this.#deps.config;
  }

  get users(): Authenticator {
    return this.#deps.users;
  }

  get log(): Logger {
    return this.#log;
  }

  ok(text?: string): void {
    this.#reply(okLine(text));
  }

  err(text: string, code?: Pop3ResponseCode): void {
    this.#reply(errLine(text, code));
  }

  async multiline(first: string, lines: Iterable<string>): Promise<void> {
    this.#reply(okLine(first));
    this.#inMultiline = true;
    let batch = '';
    let count = 0;
    for (const line of lines) {
      batch += line.charCodeAt(0) === 0x2e ? `.${line}\r\n` : `${line}\r\n`;
      count++;
      if (batch.length >= LIST_BATCH_CHARS) {
        this.#conn.write(batch);
        batch = '';
        await this.#drainIfNeeded();
      }
    }
    this.#conn.write(`${batch}.\r\n`);
    this.#inMultiline = false;
    if (this.#trace) this.#log.debug(`S: [${count} lines]`);
  }

  async sendMessage(index: number, options?: OpenMessageOptions): Promise<number> {
    const state = this.#transaction();
    const info = state.maildrop.messages[index];
    if (info === undefined) throw new Error(`sendMessage: no message at index ${index}`);
    const isTop = options?.bodyLines !== undefined;
    const stuffer = new DotStuffer();
    const first = isTop ? okLine('Top of message follows') : okLine(`${info.size} octets`);
    if (!isTop) this.#readAheadPipelined(state);
    const readAhead = isTop ? undefined : this.#readAhead?.take(index);
    const isSmall = info.size <= this.#deps.config.limits.smallMessageBytes;
    if (readAhead !== undefined || (isSmall && !isTop)) {
      // Read whole before +OK (STYLE.md 5: a vanished file or a read error is
      // still an -ERR), already dot-stuffed and terminated by the store in one
      // pass, then the message joins the reply batch with the pipelined
      // replies around it.
      const framed = await (readAhead ?? state.maildrop.readMessage(index));
      this.#reply(first);
      this.#conn.write(framed.bytes);
      return this.#sent(index, info, framed.wireSize, isTop);
    }
    if (isSmall) {
      const body = await state.maildrop.openMessage(index, options).then(readAll);
      this.#reply(first);
      this.#conn.write(stuffer.push(body));
      this.#conn.write(stuffer.terminator());
    } else {
      // Opened before +OK; then streamed with backpressure, never held whole.
      const stream = await state.maildrop.openMessage(index, options);
      try {
        this.#reply(first);
        this.#inMultiline = true;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          this.#conn.write(stuffer.push(chunk));
          await this.#drainIfNeeded();
        }
        this.#conn.write(stuffer.terminator());
        this.#inMultiline = false;
      } finally {
        stream.destroy();
      }
    }
    return this.#sent(index, info, stuffer.inputBytes, isTop);
  }

  #sent(index: number, info: MessageInfo, octets: number, isTop: boolean): number {
    if (!isTop && octets !== info.size) {
      // DESIGN.md invariant 5 broken by the store: the client got the true bytes; say so.
      this.#log.warn({ message: index + 1, uidl: info.uidl, listed: info.size, sent: octets }, 'wire size mismatch');
    }
    if (this.#trace) this.#log.debug(`S: [${octets} octets of message ${index + 1}]`);
    return octets;
  }

  /** Start reading the messages that RETRs already pipelined behind this one will ask for. */
  #readAheadPipelined(state: TransactionState): void {
    const wanted: number[] = [];
    for (const line of this.#conn.peekLines()) {
      const match = RETR_LINE.exec(line.toString('latin1'));
      if (match === null) continue;
      const index = Number(match[1]) - 1;
      if (index >= 0 && index < state.maildrop.messages.length && !state.deleted.has(index)) wanted.push(index);
    }
    if (wanted.length > 0) this.#readAheadFor(state).start(wanted);
  }

  #readAheadFor(state: TransactionState): ReadAhead {
    const limits = this.#deps.config.limits;
    this.#readAhead ??= new ReadAhead(state.maildrop, {
      maxMessages: limits.readAheadMessages,
      maxBytes: limits.readAheadBytes,
      maxMessageBytes: limits.smallMessageBytes,
    });
    return this.#readAhead;
  }

  async stopReadAhead(): Promise<void> {
    const readAhead = this.#readAhead;
    this.#readAhead = undefined;
    await readAhead?.clear();
  }

  /**
   * Most clients download in order: have the messages after `index` ready.
   * Started on the next turn of the event loop, after the replies queued now
   * went out (the session flushes when it waits for input): a store that
   * reads small files synchronously then prepares the next message while
   * this one travels and the client asks for the next, instead of holding
   * this reply back. A read-ahead stopped meanwhile (UPDATE, end) starts
   * nothing.
   */
  #readAheadAfter(state: TransactionState, index: number): void {
    this.#readAheadFrom = Math.max(this.#readAheadFrom, index + 1);
    if (this.#isReadAheadScheduled) return;
    this.#isReadAheadScheduled = true;
    const readAhead = this.#readAheadFor(state);
    setImmediate(() => {
      this.#isReadAheadScheduled = false;
      if (this.#readAhead !== readAhead) return;
      const next: number[] = [];
      const messages = state.maildrop.messages.length;
      for (let i = this.#readAheadFrom; i < messages && next.length < SEQUENTIAL_READ_AHEAD; i++) {
        if (!state.deleted.has(i) && !state.retrieved.has(i)) next.push(i);
      }
      readAhead.start(next);
    });
  }

  /** RETR sent message `index` whole: Seen at UPDATE, counted, announced. */
  markRetrieved(index: number, octets: number): void {
    const state = this.#transaction();
    state.retrieved.add(index);
    this.#retrievedCount++;
    if (this.#deps.config.limits.readAheadMessages > 0) this.#readAheadAfter(state, index);
    const info = state.maildrop.messages[index];
    this.#deps.events.emit('retrieve', {
      sessionId: this.#conn.id,
      user: state.user.name,
      number: index + 1,
      uidl: info?.uidl ?? '',
      octets,
    });
  }

  transition(next: Pop3State): void {
    const from = this.#state.name;
    this.#state = next;
    this.#log.debug({ from, to: next.name }, 'state');
  }

  async login(user: MailUser, mechanism: string): Promise<void> {
    const wait = this.#deps.loginDelay.remainingSeconds(user.name);
    if (wait > 0) {
      this.#log.debug({ user: user.name, wait }, 'login refused: LOGIN-DELAY');
      throw new Pop3Error(
        `Minimum time between logins is ${this.#deps.loginDelay.seconds} seconds, try again in ${wait} seconds`,
        'LOGIN-DELAY',
      );
    }
    const maildrop = await this.#deps.store.openMaildrop(user);
    this.#deps.loginDelay.recordLogin(user.name);
    this.#user = user.name;
    this.#log = this.#log.child({ user: user.name });
    this.transition({ name: 'TRANSACTION', user, maildrop, deleted: new Set(), retrieved: new Set(), mechanism });
    const { count, octets } = liveTotals(this.#transaction());
    this.#log.info({ mechanism, tls: this.#conn.isTls, messages: count, octets }, 'login');
    this.#deps.events.emit('login', {
      sessionId: this.#conn.id,
      user: user.name,
      mechanism,
      remoteAddress: this.#conn.remoteAddress,
      isTls: this.#conn.isTls,
      messages: count,
      octets,
    });
    this.ok(`Logged in, maildrop has ${count} message${count === 1 ? '' : 's'} (${octets} octets)`);
  }

  async authenticate(login: string, mechanism: string, verify: () => Promise<MailUser | undefined>): Promise<void> {
    const remote = this.#conn.remoteAddress;
    // Served before the check, not only before the failure reply
    // (src/auth/throttle.ts): hanging up early buys an attacker nothing.
    const delayMs = this.#deps.throttle.attemptDelayMs(remote, login === '' ? undefined : login);
    if (delayMs > 0) {
      this.#log.debug({ delayMs }, 'failed-login delay');
      this.#conn.flush();
      await new Promise<void>((resolve) => this.#deps.timers.start('auth-delay', delayMs, resolve));
    }
    const user = await verify();
    if (user === undefined) {
      await this.authFailed(login, mechanism);
      return;
    }
    this.#deps.throttle.recordSuccess(remote, login);
    await this.login(user, mechanism);
  }

  async authFailed(login: string, mechanism: string): Promise<void> {
    this.#authFailures++;
    const nextDelayMs = this.#deps.throttle.recordFailure(this.#conn.remoteAddress, login === '' ? undefined : login);
    this.#log.info({ login, mechanism, failures: this.#authFailures, nextDelayMs }, 'authentication failed');
    this.#deps.events.emit('login-failed', {
      sessionId: this.#conn.id,
      login,
      mechanism,
      remoteAddress: this.#conn.remoteAddress,
    });
    this.err('Authentication failed', 'AUTH');
    if (this.#authFailures >= this.#deps.config.limits.maxAuthFailures) {
      this.#endReason = 'auth-failures';
      this.#closeAfterReply = true;
    }
  }

  async readResponse(): Promise<string | undefined> {
    this.#conn.maxLineLength = this.#deps.config.limits.maxSaslLineLength;
    try {
      const event = await this.#conn.readLine();
      switch (event.kind) {
        case 'line':
          if (this.#trace) this.#log.debug('C: ***');
          return event.line.toString('latin1');
        case 'too-long':
          throw new Pop3SyntaxError('Authentication response too long');
        case 'idle-timeout':
        case 'line-timeout':
        case 'shutdown':
        case 'eof':
          this.#endReason = this.#ending(event.kind);
          this.#closeAfterReply = true;
          return undefined;
        default:
          return assertNever(event);
      }
    } finally {
      this.#conn.maxLineLength = this.#deps.config.limits.maxLineLength;
    }
  }

  challenge(base64: string): void {
    this.#reply(`+ ${base64}\r\n`);
  }

  async startTls(): Promise<void> {
    const tls = this.#deps.tls;
    if (tls === undefined) throw new Pop3Error('TLS is not available on this server');
    if (this.#trace) this.#log.debug('S: +OK Begin TLS negotiation');
    let discarded: number;
    try {
      discarded = await this.#conn.startTls(tls.current, okLine('Begin TLS negotiation'));
    } catch (err) {
      this.#log.info({ err: (err as Error).message }, 'STLS handshake failed');
      throw new ConnectionLostError('TLS handshake failed');
    }
    if (discarded > 0) {
      this.#log.warn({ discarded }, 'input pipelined after STLS discarded (possible command injection)');
    }
    this.#log.debug('TLS started');
  }

  enableUtf8(): void {
    this.#isUtf8 = true;
  }

  capabilities(): string[] {
    return capabilityLines(COMMANDS, {
      state: this.#state.name,
      facts: this.facts,
      config: this.#deps.config,
      users: this.#deps.users,
    });
  }

  closeAfterReply(): void {
    this.#closeAfterReply = true;
  }

  // ---- the session ------------------------------------------------------

  /** Run the session to its end. Never rejects; the maildrop is always released. */
  async run(): Promise<SessionSummary> {
    const startedAt = this.#deps.now();
    let reason: SessionEndReason = 'eof';
    try {
      this.#reply(okLine(this.#greeting()));
      this.#deps.events.emit('connect', { sessionId: this.#conn.id, remoteAddress: this.#conn.remoteAddress, isTls: this.#conn.isTls });
      reason = await this.#loop();
    } catch (err) {
      reason = 'error';
      if (!(err instanceof ConnectionLostError)) this.#log.error({ err }, 'session failed');
      else this.#log.debug({ err: err.message }, 'connection lost');
      this.#conn.destroy();
    } finally {
      await this.#releaseMaildrop();
      if (!this.#conn.isClosed) {
        if (reason === 'error') this.#conn.destroy();
        else await this.#conn.end();
      }
    }
    const summary: SessionSummary = {
      sessionId: this.#conn.id,
      user: this.#user,
      remoteAddress: this.#conn.remoteAddress,
      isTls: this.#conn.isTls,
      retrieved: this.#retrievedCount,
      deleted: this.#deletedCount,
      bytesSent: this.#conn.bytesSent,
      bytesReceived: this.#conn.bytesReceived,
      durationMs: this.#deps.now() - startedAt,
      reason,
    };
    // The connection's logger already names the remote address, and the user once logged in.
    this.#log.info(
      {
        tls: summary.isTls,
        retrieved: summary.retrieved,
        deleted: summary.deleted,
        bytes: summary.bytesSent,
        durationMs: summary.durationMs,
        reason,
      },
      'session end',
    );
    this.#deps.events.emit('session-end', summary);
    return summary;
  }

  async #loop(): Promise<SessionEndReason> {
    for (;;) {
      const event = await this.#conn.readLine();
      switch (event.kind) {
        case 'line':
          await this.#dispatch(event.line);
          break;
        case 'too-long':
          if (this.#trace) this.#log.debug(`C: [${event.length} octets, over the line limit]`);
          this.err('Command line too long');
          this.#commandDone('unknown', false);
          this.#badCommand();
          break;
        case 'idle-timeout':
        case 'line-timeout':
        case 'shutdown':
        case 'eof':
          return this.#ending(event.kind);
        default:
          return assertNever(event);
      }
      if (this.#closeAfterReply) return this.#endReason ?? 'quit';
      // A client that pipelines without reading our replies must not make
      // us queue them without bound: wait until it reads (or time out).
      await this.#drainIfNeeded();
    }
  }

  async #dispatch(raw: Buffer): Promise<void> {
    let text: string;
    try {
      text = this.#isUtf8 ? UTF8.decode(raw) : raw.toString('latin1');
    } catch {
      this.err('Invalid UTF-8 in command');
      this.#commandDone('unknown', false);
      this.#badCommand();
      return;
    }
    const space = text.indexOf(' ');
    const verb = (space === -1 ? text : text.slice(0, space)).toUpperCase();
    const args = space === -1 ? '' : text.slice(space + 1);
    const command = COMMAND_TABLE.get(verb);
    if (command === undefined) {
      if (this.#trace) this.#log.debug(`C: ${VERB.test(verb) ? verb : '[unprintable]'} [${args.length} octets of arguments]`);
      this.err(VERB.test(verb) ? `Unknown command: ${verb}` : 'Unknown command');
      this.#commandDone('unknown', false);
      this.#badCommand();
      return;
    }
    if (this.#trace) {
      const shown = args === '' ? '' : ` ${command.redact === undefined ? args : command.redact(args)}`;
      this.#log.debug(`C: ${verb}${shown}`);
    }
    if (!(command.states as readonly string[]).includes(this.#state.name)) {
      this.err(`${verb} is not valid in the ${this.#state.name} state`);
      this.#commandDone(verb, false);
      this.#badCommand();
      return;
    }
    this.#lastReplyOk = undefined;
    let isLost = false;
    try {
      // The state check above is what makes each command's narrowed view of `state` true.
      await command.run(this, args);
    } catch (err) {
      if (err instanceof ConnectionLostError || this.#inMultiline) {
        isLost = true;
        throw err;
      }
      this.#reply(toPop3Reply(err, this.#log));
      if (err instanceof Pop3SyntaxError) this.#badCommand();
    } finally {
      // No +OK/-ERR of ours at all (STLS answers inside the handshake step): it went through.
      this.#commandDone(verb, !isLost && (this.#lastReplyOk ?? true));
    }
  }

  #commandDone(command: string, ok: boolean): void {
    this.#deps.events.emit('command', { sessionId: this.#conn.id, command, ok });
  }

  /** Say why the session ends (a read ended by a timer or a shutdown; EOF needs no words). */
  #ending(kind: 'idle-timeout' | 'line-timeout' | 'shutdown' | 'eof'): SessionEndReason {
    switch (kind) {
      case 'idle-timeout':
        this.err('Disconnected for inactivity');
        break;
      case 'line-timeout':
        this.err('Command line not finished in time');
        break;
      case 'shutdown':
        this.err('Server shutting down', 'SYS/TEMP');
        break;
      case 'eof':
        break;
      default:
        return assertNever(kind);
    }
    return kind;
  }

  #badCommand(): void {
    this.#badCommands++;
    if (this.#badCommands >= this.#deps.config.limits.maxBadCommands) {
      this.err('Too many bad commands, closing connection');
      this.#endReason = 'bad-commands';
      this.#closeAfterReply = true;
    }
  }

  #reply(line: string): void {
    if (line.startsWith('+OK')) this.#lastReplyOk = true;
    else if (line.startsWith('-ERR')) this.#lastReplyOk = false;
    this.#conn.write(line);
    if (this.#trace) this.#log.debug(`S: ${line.slice(0, -2)}`);
  }

  async #drainIfNeeded(): Promise<void> {
    if (!this.#conn.needsDrain) return;
    const result = await this.#conn.drain();
    if (result !== 'drained') throw new ConnectionLostError(`client gone while sending (${result})`);
  }

  #transaction(): TransactionState {
    if (this.#state.name !== 'TRANSACTION') throw new Error(`expected TRANSACTION, in ${this.#state.name}`);
    return this.#state;
  }

  #greeting(): string {
    const { config, users } = this.#deps;
    if (config.isApopEnabled && users.hasSharedSecrets()) {
      // RFC 1939 section 7: a timestamp unique to this greeting; its random
      // part makes it unguessable, so a recorded digest cannot be replayed.
      this.#apopChallenge = newChallenge({ hostname: config.hostname, now: this.#deps.now });
      return `${config.greeting} ${this.#apopChallenge}`;
    }
    return config.greeting;
  }

  async #releaseMaildrop(): Promise<void> {
    await this.stopReadAhead();
    const state = this.#state;
    switch (state.name) {
      case 'AUTHORIZATION':
        return;
      case 'TRANSACTION':
      case 'UPDATE':
        // After a commit this is a no-op (the contract makes it idempotent);
        // otherwise nothing is deleted: dropped, timed out or shut down.
        try {
          await state.maildrop.release();
        } catch (err) {
          this.#log.error({ err }, 'maildrop release failed');
        }
        return;
      default:
        return assertNever(state);
    }
  }

  /** QUIT committed `deleted` messages: count and announce them. */
  noteCommitted(deleted: readonly number[]): void {
    const state = this.#state;
    if (state.name !== 'UPDATE') return;
    this.#deletedCount = deleted.length;
    if (deleted.length === 0) return;
    this.#deps.events.emit('delete', {
      sessionId: this.#conn.id,
      user: state.user.name,
      messages: deleted.map((index) => ({ number: index + 1, uidl: state.maildrop.messages[index]?.uidl ?? '' })),
    });
  }
}

