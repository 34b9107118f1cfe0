/**
 * smtp-server, extended where it has no option for what maildird needs.
 * smtp-server keeps the protocol (parsing, pipelining, SASL framing,
 * STARTTLS, dot-unstuffing); these subclasses add, per connection:
 *
 *   - enhanced status codes of our choosing: smtp-server derives them from
 *     the reply code alone (554 is always 5.6.0 there), so a handler's
 *     reply text that starts with `X.Y.Z ` has that code moved into place
 *     (and dropped where RFC 2034 wants none: greetings, HELO/EHLO);
 *   - the idle, line and DATA-rate clocks (timeouts.ts);
 *   - a limit on error replies (Postfix's smtpd_hard_error_limit);
 *   - standard refusals for obsolete or dangerous commands and a HELP
 *     derived from the commands this connection supports;
 *   - a clear 538 for AUTH where it is not offered (plaintext, not loopback);
 *   - per-address connection counting;
 *   - a client that half-closes (FIN after its last command, `nc -N`,
 *     shutdown(SHUT_WR)) still gets every reply it is owed, then the close.
 *     The listener is allowHalfOpen (server.ts), smtp-server has no 'end'
 *     handler of its own, so ending our side is done here.
 *
 * The overridden members are smtp-server's own (typed in its .d.ts); a
 * change there shows up in test/smtp/*.test.ts, which drive real sockets.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection';
import type { SMTPStream } from 'smtp-server/lib/smtp-stream';
import { KNOWN_VERBS, type SmtpEventSink } from './events.js';
import { REPLIES, splitEnhanced, type SmtpReply } from './replies.js';
import { ConnectionTimeouts, type TimeoutSettings } from './timeouts.js';

export interface ConnectionSettings {
  readonly timeouts: TimeoutSettings;
  /** 5xx replies on one connection before it is closed with 421. */
  readonly maxErrors: number;
  /** AUTH exists on this listener (a connection may still not be offered it). */
  readonly authConfigured: boolean;
  readonly lmtp: boolean;
  /** Where connections report connect, command results and their end (SmtpServer's events). */
  readonly events?: SmtpEventSink | undefined;
}

/** Intermediate replies: the command goes on (AUTH challenges, DATA's go-ahead); its result comes later. */
const INTERMEDIATE = new Set([334, 354]);

type CommandHandler = (this: SMTPConnection, command: Buffer, callback: () => void) => void;

/**
 * Commands that get a fixed answer (STYLE.md 1: commands are data).
 * RFC 5321 3.5.3 lets a server refuse EXPN and answer VRFY with 252 so no
 * address can be probed; appendix F lists TURN, SEND, SOML and SAML as
 * obsolete (502); ETRN asks for a queue run and maildird has no queue.
 */
interface FixedAnswer {
  readonly reply: SmtpReply;
  /** Reply when the command lacks its argument (VRFY needs one, RFC 5321 4.1.1.6). */
  readonly needsArgument?: SmtpReply;
}

const NOT_IMPLEMENTED = (verb: string): SmtpReply => ({ code: 502, enhanced: '5.5.1', text: `${verb} not implemented` });

export const FIXED_ANSWERS: ReadonlyMap<string, FixedAnswer> = new Map<string, FixedAnswer>([
  [
    'VRFY',
    {
      reply: { code: 252, enhanced: '2.5.0', text: 'Cannot VRFY user, but will accept message and attempt delivery' },
      needsArgument: { code: 501, enhanced: '5.5.4', text: 'Syntax: VRFY <address>' },
    },
  ],
  ['EXPN', { reply: { code: 502, enhanced: '5.5.1', text: 'EXPN not available' } }],
  ['TURN', { reply: NOT_IMPLEMENTED('TURN') }],
  ['ATRN', { reply: NOT_IMPLEMENTED('ATRN') }],
  ['ETRN', { reply: NOT_IMPLEMENTED('ETRN') }],
  ['SEND', { reply: NOT_IMPLEMENTED('SEND') }],
  ['SOML', { reply: NOT_IMPLEMENTED('SOML') }],
  ['SAML', { reply: NOT_IMPLEMENTED('SAML') }],
  ['BDAT', { reply: NOT_IMPLEMENTED('BDAT (CHUNKING)') }],
]);

/** smtp-server's sendmail jokes and proxy commands, off unless configured. */
export const DISABLED_COMMANDS = ['WIZ', 'SHELL', 'KILL', 'XCLIENT', 'XFORWARD'] as const;

function verbOf(command: Buffer): string {
  const text = command.toString('latin1');
  const space = text.indexOf(' ');
  return (space === -1 ? text : text.slice(0, space)).trim().toUpperCase();
}

function format(reply: SmtpReply): string {
  return `${reply.enhanced} ${reply.text}`;
}

export class MaildirdConnection extends SMTPConnection {
  readonly core: MaildirdSmtpCore;
  readonly timeouts: ConnectionTimeouts;
  /** The client address at accept time: the key for per-address limits. */
  readonly acceptedFrom: string;
  readonly #settings: ConnectionSettings;
  #enhanced: string | undefined;
  #errors = 0;
  #detached = false;
  /** Commands dispatched whose handlers have not called back yet (their replies are still owed). */
  #running = 0;
  /** The client half-closed: its last command is in, nothing more will come. */
  #inputEnded = false;
  /** The command waiting for its final reply (undefined between commands and for continuation lines). */
  #pendingVerb: string | undefined;
  #bytesReceived = 0;
  #bytesSent = 0;

  constructor(core: MaildirdSmtpCore, socket: Socket | TLSSocket, options: SMTPConnectionOptions | null | undefined, settings: ConnectionSettings) {
    super(core, socket, options);
    this.core = core;
    this.#settings = settings;
    this.acceptedFrom = this.remoteAddress;
    this.timeouts = new ConnectionTimeouts(
      settings.timeouts,
      (reply) => this.send(reply.code, format(reply)),
      () => this._handlerPending,
    );
  }

  /**
   * Every parser (the first, and the new one after STARTTLS) reports the
   * octets it is given, before parsing, for the line and DATA-rate clocks.
   * Called from smtp-server's constructor: touches no field until bytes come.
   */
  override _createParser(): SMTPStream {
    const parser = super._createParser();
    const write = parser.write;
    parser.write = function (this: SMTPStream, chunk: unknown, ...rest: unknown[]): boolean {
      connectionOfParser.get(this)?.onBytes(chunk);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof parser.write;
    connectionOfParser.set(parser, this);
    // The socket piped into the parser ended (the client's FIN) and every
    // command before it has run: a Writable finishes only once each write's
    // callback ran, and smtp-server holds a chunk's callback until the
    // commands in it are answered (for DATA, until the reply after "." is
    // written). smtp-server's own 'finish' listener (the last line without
    // CRLF, run as a command) was added first, so it has been dispatched.
    // A retired parser (after STARTTLS) is unpiped, never ended.
    parser.once('finish', () => connectionOfParser.get(parser)?.onInputEnded(parser));
    return parser;
  }

  /** @internal the client half-closed; see _createParser. */
  onInputEnded(parser: SMTPStream): void {
    if (parser !== this._parser) return;
    this.#inputEnded = true;
    this.#closeIfDone();
  }

  /**
   * A half-closed client is answered in full, then our side is ended. In the
   * middle of DATA the message is incomplete: the close destroys its stream,
   * so the handler sees the client gone and nothing is stored.
   */
  #closeIfDone(): void {
    if (!this.#inputEnded || this.#running > 0 || this._closing || this._closed) return;
    this.close();
  }

  onBytes(chunk: unknown): void {
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length;
    this.#bytesReceived += length;
    this.timeouts.received(length);
  }

  override _sendGreeting(): void {
    super._sendGreeting();
    this.timeouts.waitForCommand();
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    this.timeouts.commandStarted();
    this.#running += 1;
    let isDone = false;
    // A line for a queued handler (an AUTH response) continues the command before it.
    if (this._nextHandler === false) {
      const verb = verbOf(command);
      this.#pendingVerb = KNOWN_VERBS.has(verb) ? verb : 'unknown';
    }
    const next = (): void => {
      if (!isDone) {
        isDone = true;
        this.#running -= 1;
      }
      if (this._parser !== false && this._parser._dataMode) this.timeouts.dataStarted();
      else if (!this._closing) this.timeouts.waitForCommand();
      callback?.();
      this.#closeIfDone();
    };
    if (this.#isUnofferedAuth(command)) {
      this.send(REPLIES.encryptionRequired.code, format(REPLIES.encryptionRequired));
      setImmediate(() => this._whenWritable(next));
      return;
    }
    super._onCommand(command, next);
  }

  /**
   * AUTH exists here but this connection is not offered it (plaintext and
   * not loopback): say why (RFC 4954 section 6: 538 5.7.11) instead of
   * smtp-server's "command not recognized".
   */
  #isUnofferedAuth(command: Buffer): boolean {
    if (this._nextHandler !== false || !this._ready || this._upgrading || this._closing) return false;
    if (!this.#settings.authConfigured || !this._isDisabled('AUTH')) return false;
    return verbOf(command) === 'AUTH';
  }

  override _getHandler(command: string): CommandHandler | undefined {
    const fixed = FIXED_ANSWERS.get(command);
    if (fixed !== undefined) {
      return function (this: SMTPConnection, line: Buffer, callback: () => void): void {
        const hasArgument = line.toString('latin1').trim().split(/\s+/).length > 1;
        const reply = fixed.needsArgument !== undefined && !hasArgument ? fixed.needsArgument : fixed.reply;
        this.send(reply.code, format(reply));
        callback();
      };
    }
    if (command === 'HELP') {
      return function (this: SMTPConnection, _line: Buffer, callback: () => void): void {
        (this as MaildirdConnection).#help();
        callback();
      };
    }
    return super._getHandler(command);
  }

  /** RFC 5321 4.1.1.8: HELP lists what this connection accepts. */
  #help(): void {
    const opening = this.#settings.lmtp ? ['LHLO'] : ['EHLO', 'HELO'];
    const verbs = [...opening, 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'HELP', 'VRFY', 'STARTTLS', 'AUTH'].filter(
      (verb) => opening.includes(verb) || (this._isSupported(verb) && !(verb === 'STARTTLS' && this.secure)),
    );
    this.send(214, ['Commands:', verbs.join(' '), 'See RFC 5321']);
  }

  /**
   * Moves a leading enhanced code out of the text (see the module comment)
   * and counts error replies.
   */
  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    let text = data;
    if (typeof data === 'string') {
      const split = splitEnhanced(code, data);
      if (split !== undefined) {
        this.#enhanced = split.enhanced;
        text = split.text;
      }
    }
    // smtp-server writes only while the socket's readyState is 'open'; a
    // half-closed client's socket is 'writeOnly', and the replies it is owed
    // (the 250 for a message whose "." came with the FIN) must still go out.
    // Shadow the getter for this one write; deleting the own property
    // restores the prototype's.
    const socket = this._socket as { readyState: string; writable: boolean };
    const isHalfClosed = !this._upgrading && socket.readyState === 'writeOnly' && socket.writable;
    if (isHalfClosed) Object.defineProperty(socket, 'readyState', { value: 'open', configurable: true });
    const verb = this.#pendingVerb;
    if (verb !== undefined && !INTERMEDIATE.has(code)) {
      this.#pendingVerb = undefined;
      this.#settings.events?.emit('command', { sessionId: this.id, command: verb, code });
    }
    // smtp-server writes every reply here and nowhere else; bytesWritten counts what is queued too.
    const wire = this._socket;
    const before = wire.bytesWritten;
    try {
      super.send(code, text, context);
    } finally {
      this.#enhanced = undefined;
      if (isHalfClosed) delete (socket as { readyState?: string }).readyState;
      this.#bytesSent += wire.bytesWritten - before;
    }
    if (code >= 500 && !this._closing) {
      this.#errors += 1;
      if (this.#errors >= this.#settings.maxErrors) this.send(REPLIES.tooManyErrors.code, format(REPLIES.tooManyErrors));
    }
  }

  override _getEnhancedStatusCode(code: number, context?: string | false): string {
    const base = super._getEnhancedStatusCode(code, context);
    return base !== '' && this.#enhanced !== undefined ? this.#enhanced : base;
  }

  override _onClose(): void {
    super._onClose();
    this.timeouts.close();
    if (!this.#detached) {
      this.#detached = true;
      this.core.detach(this);
      this.#settings.events?.emit('session-end', {
        sessionId: this.id,
        bytesReceived: this.#bytesReceived,
        bytesSent: this.#bytesSent,
      });
    }
  }
}

/** Parsers back to their connection (a WeakMap, so a retired parser holds nothing). */
const connectionOfParser = new WeakMap<SMTPStream, MaildirdConnection>();

/** SMTPServer whose connections are MaildirdConnections. */
export class MaildirdSmtpCore extends SMTPServer {
  readonly #settings: ConnectionSettings;
  readonly #bySession = new WeakMap<SMTPServerSession, MaildirdConnection>();
  /** Open connections per client address, in the order they were accepted. */
  readonly #perAddress = new Map<string, Set<MaildirdConnection>>();

  constructor(options: SMTPServerOptions, settings: ConnectionSettings) {
    super(options);
    this.#settings = settings;
  }

  /** smtp-server's connect(), with our connection class. */
  override connect(socket: Socket | TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    const connection = new MaildirdConnection(this, socket, socketOptions, this.#settings);
    this.#bySession.set(connection.session, connection);
    let fromAddress = this.#perAddress.get(connection.acceptedFrom);
    if (fromAddress === undefined) this.#perAddress.set(connection.acceptedFrom, (fromAddress = new Set()));
    fromAddress.add(connection);
    this.connections.add(connection);
    this.#settings.events?.emit('connect', { sessionId: connection.id, remoteAddress: connection.remoteAddress });
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection.init();
  }

  connectionOf(session: SMTPServerSession): MaildirdConnection | undefined {
    return this.#bySession.get(session);
  }

  /**
   * This connection's place (1-based) among the open connections from its
   * address, by accept order: what the per-IP limit judges. A plain count
   * of open connections, read when onConnect runs, refused a whole burst
   * (each of 30 connections opened at once saw 30 > 20), not just the ones
   * over the limit; found by the load harness (issue 6). Connections that
   * closed meanwhile no longer count.
   */
  rankFromAddress(connection: MaildirdConnection): number {
    let rank = 0;
    for (const open of this.#perAddress.get(connection.acceptedFrom) ?? []) {
      rank++;
      if (open === connection) return rank;
    }
    return 0;
  }

  /** @internal called once per connection when it closes. */
  detach(connection: MaildirdConnection): void {
    const fromAddress = this.#perAddress.get(connection.acceptedFrom);
    fromAddress?.delete(connection);
    if (fromAddress?.size === 0) this.#perAddress.delete(connection.acceptedFrom);
  }
}
