/**
 * `maildird deliver`: a local delivery agent. One message on an input
 * stream (stdin), delivered to the named users or addresses with the same
 * checks (size, hop limit), trace headers and durability as SMTP delivery,
 * and an exit code from sysexits(3), so Postfix's `mailbox_command`,
 * fetchmail's `--mda` and procmail-style setups can use it:
 *
 *   0  EX_OK         every copy is durable
 *   64 EX_USAGE      no recipient given
 *   65 EX_DATAERR    the message itself is refused (too large, mail loop, the content filter)
 *   67 EX_NOUSER     a recipient is unknown (nothing is delivered then)
 *   73 EX_CANTCREAT  over quota, or the mailbox cannot be written (an operator must act)
 *   75 EX_TEMPFAIL   try again later (disk full, I/O error, quota when configured temporary)
 *
 * The input is stored as it comes (LF or CRLF lines, a lone CR kept, a
 * missing final newline allowed; DESIGN.md "Stored bytes"): no SMTP framing
 * here, so no bare-line-end rules. A leading mbox `From sender date` line
 * (what procmail-style agents get) is removed and gives the sender; a
 * leading `Return-Path:` (Postfix's local(8) adds one) is kept, gives the
 * sender, and no second one is added.
 */
import type { Authenticator } from '../auth/authenticator.js';
import type { SmtpReplyError } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import type { MailStore } from '../storage/store.js';
import type { AliasTable } from './aliases.js';
import { DataInspector } from './data-inspector.js';
import { deliverToStore, summarise, type AcceptedRecipient } from './delivery.js';
import { filterContent, type FilterSettings } from './filter.js';
import { nextQueueId } from './queue-id.js';
import type { TraceInfo } from './received.js';
import { RecipientPolicy } from './recipient-policy.js';
import { toSmtpReply } from './replies.js';

/** sysexits(3) codes this command uses. */
export const EX_OK = 0;
export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_NOUSER = 67;
export const EX_CANTCREAT = 73;
export const EX_TEMPFAIL = 75;

export interface LocalDeliveryOptions {
  readonly store: MailStore;
  readonly users: Authenticator;
  /** User names (`alice`) or addresses (`alice+tag@example.org`, through aliases). */
  readonly recipients: readonly string[];
  /** The message. Consumed once. */
  readonly input: AsyncIterable<Uint8Array | string>;
  /** Envelope sender (`-f`); default: from a leading `From ` or `Return-Path:` line, else the null sender. */
  readonly sender?: string | undefined;
  /** Resolves addresses; default: one from localDomains and aliases. */
  readonly policy?: RecipientPolicy | undefined;
  readonly localDomains?: readonly string[] | undefined;
  readonly aliases?: AliasTable | undefined;
  /** Our name in the Received header. */
  readonly hostname?: string | undefined;
  readonly maxBytes?: number | undefined;
  /** Most Received headers accepted (default 50). */
  readonly maxHops?: number | undefined;
  readonly quotaIsTemporary?: boolean | undefined;
  readonly now?: (() => Date) | undefined;
  readonly logger?: Logger | undefined;
  /** The pre-delivery filter (filter.ts), as for SMTP: reject exits 65, defer and failures 75. */
  readonly filter?: FilterSettings | undefined;
}

export interface LocalDeliveryResult {
  readonly exitCode: number;
  /** One line for stderr (or the log). */
  readonly message: string;
  /** Store ids by canonical user, for the copies made. */
  readonly ids: ReadonlyMap<string, string>;
}

/** An SMTP-style reply to the sysexits code an MTA understands. */
export function exitCodeFor(reply: SmtpReplyError): number {
  if (reply.replyCode < 500) return EX_TEMPFAIL;
  switch (reply.enhancedCode) {
    case '5.1.1':
      return EX_NOUSER;
    case '5.3.4':
    case '5.4.6':
    case '5.6.0':
    case '5.7.1': // refused by the content filter
      return EX_DATAERR;
    default:
      return EX_CANTCREAT;
  }
}

const MAX_FIRST_LINE = 8192;
const FROM_LINE = /^From (\S+)/;
const RETURN_PATH = /^Return-Path:[ \t]*<([^>]*)>/i;

export async function deliverLocal(options: LocalDeliveryOptions): Promise<LocalDeliveryResult> {
  const none = new Map<string, string>();
  if (options.recipients.length === 0) return { exitCode: EX_USAGE, message: 'no recipient given', ids: none };
  const policy =
    options.policy ??
    new RecipientPolicy({ users: options.users, localDomains: options.localDomains ?? [], aliases: options.aliases });

  // Every recipient first: an unknown one means nothing is delivered (the MTA bounces it whole).
  const recipients: AcceptedRecipient[] = [];
  for (const recipient of options.recipients) {
    const resolved = resolveRecipient(recipient, options.users, policy);
    if (resolved === undefined) return { exitCode: EX_NOUSER, message: `${recipient}: user unknown`, ids: none };
    recipients.push(resolved);
  }

  const queueId = nextQueueId();
  const now = options.now ?? (() => new Date());
  const iterator = options.input[Symbol.asyncIterator]();
  let head: Head;
  try {
    head = await readHead(iterator);
  } catch (err) {
    options.logger?.error({ err, queueId }, 'deliver: cannot read the message');
    return { exitCode: EX_TEMPFAIL, message: 'cannot read the message', ids: none };
  }
  const sender = options.sender ?? head.sender ?? '';
  const trace: TraceInfo = { mailFrom: sender, hostname: options.hostname ?? 'localhost', protocol: 'local', queueId, date: now() };
  const inspector = new DataInspector({ maxBytes: options.maxBytes, maxReceived: options.maxHops ?? 50, strictLineEnds: false });

  async function* content(): AsyncGenerator<Buffer> {
    for (const chunk of head.chunks) {
      inspector.update(chunk);
      yield chunk;
    }
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) break;
      const chunk = toBuffer(next.value);
      inspector.update(chunk);
      yield chunk;
    }
    inspector.end();
  }

  let failure: SmtpReplyError | undefined;
  let ids: ReadonlyMap<string, string> = none;
  try {
    const filter = options.filter;
    const delivered = await deliverToStore({
      store: options.store,
      recipients,
      content:
        filter === undefined
          ? content()
          : await filterContent({ ...filter, logger: options.logger ?? silentLogger() }, content(), trace, options.recipients),
      trace,
      maxBytes: options.maxBytes,
      replyOptions: { quotaIsTemporary: options.quotaIsTemporary === true },
      ...(head.hasReturnPath ? { withReturnPath: false } : {}),
    });
    ids = delivered.ids;
    for (const result of delivered.results) {
      if (!result.ok && result.error !== undefined) options.logger?.error({ err: result.error, queueId }, 'deliver: copy failed');
    }
    failure = summarise(delivered.results);
  } catch (err) {
    failure = inspector.failure ?? toSmtpReply(err, { quotaIsTemporary: options.quotaIsTemporary === true });
    if (inspector.failure === undefined) options.logger?.error({ err, queueId }, 'deliver: failed');
  }
  if (failure !== undefined) {
    return { exitCode: exitCodeFor(failure), message: `${failure.enhancedCode} ${failure.message}`, ids };
  }
  const names = recipients.flatMap((r) => r.users.map((u) => u.name));
  options.logger?.info({ queueId, from: sender, rcpts: options.recipients, size: inspector.bytes }, 'message delivered');
  return { exitCode: EX_OK, message: `delivered to ${[...new Set(names)].join(', ')} as ${queueId}`, ids };
}

function resolveRecipient(recipient: string, users: Authenticator, policy: RecipientPolicy): AcceptedRecipient | undefined {
  if (!recipient.includes('@')) {
    const user = users.lookup(recipient);
    if (user !== undefined) return { address: recipient, users: [user] };
    const domain = policy.primaryDomain;
    if (domain === undefined) return undefined;
    const viaPolicy = policy.resolve(`${recipient}@${domain}`);
    return viaPolicy.ok ? { address: recipient, users: viaPolicy.users } : undefined;
  }
  const resolved = policy.resolve(recipient);
  return resolved.ok ? { address: recipient, users: resolved.users } : undefined;
}

interface Head {
  /** The chunks read so far, minus a leading `From ` line. */
  readonly chunks: Buffer[];
  readonly sender: string | undefined;
  readonly hasReturnPath: boolean;
}

/** Read the first line (twice, when the first was an mbox `From ` line) without reading the whole message. */
async function readHead(iterator: AsyncIterator<Uint8Array | string>): Promise<Head> {
  let buffered = Buffer.alloc(0);
  const firstLine = async (): Promise<string | undefined> => {
    for (;;) {
      const lf = buffered.indexOf(0x0a);
      if (lf !== -1) return buffered.toString('latin1', 0, lf + 1);
      if (buffered.length >= MAX_FIRST_LINE) return undefined;
      const next = await iterator.next();
      if (next.done === true) return buffered.length === 0 ? undefined : buffered.toString('latin1');
      buffered = Buffer.concat([buffered, toBuffer(next.value)]);
    }
  };
  let sender: string | undefined;
  let line = await firstLine();
  const from = line === undefined ? null : FROM_LINE.exec(line);
  if (line !== undefined && from !== null) {
    const address = from[1] ?? '';
    sender = address === 'MAILER-DAEMON' ? '' : address;
    buffered = buffered.subarray(line.length);
    line = await firstLine();
  }
  const returnPath = line === undefined ? null : RETURN_PATH.exec(line);
  if (returnPath !== null) sender = returnPath[1] ?? '';
  return { chunks: buffered.length === 0 ? [] : [buffered], sender, hasReturnPath: returnPath !== null };
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

