/**
 * The default message handler: one copy per local user through the store,
 * each with its own `Return-Path:`/`Received: ... for <rcpt>` prefix, and
 * the per-recipient results the SMTP (one reply) and LMTP (one reply per
 * RCPT, RFC 2033 4.2) front-ends turn into replies.
 *
 * A copy is acknowledged only when the store says it is durable (the
 * store's contract: file fsynced, renamed, directory fsynced); a failed
 * copy leaves no file. Several RCPTs reaching the same user (aliases,
 * `user+tag`) give that user one copy, traced for the first of them.
 */
import type { SmtpReplyError } from '../errors.js';
import type { DeliveryOutcome, MailStore, MailUser } from '../storage/store.js';
import { isTemporary, toSmtpReply, type ReplyMappingOptions } from './replies.js';
import { traceHeaders, type TraceInfo } from './received.js';

/** An accepted RCPT: the address as given and the local users it reaches. */
export interface AcceptedRecipient {
  readonly address: string;
  readonly users: readonly MailUser[];
}

export type RecipientResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reply: SmtpReplyError; /** The storage error behind it, for the log. */ readonly error?: unknown };

export interface StoreDeliveryRequest {
  readonly store: MailStore;
  readonly recipients: readonly AcceptedRecipient[];
  readonly content: AsyncIterable<Buffer>;
  readonly trace: TraceInfo;
  readonly maxBytes?: number | undefined;
  readonly replyOptions?: ReplyMappingOptions | undefined;
  /** Add `Return-Path:` (default true; false when the message already carries one). */
  readonly withReturnPath?: boolean | undefined;
}

export interface StoreDeliveryResult {
  /** One per recipient, in envelope order. */
  readonly results: readonly RecipientResult[];
  /** Store ids of the copies made, by canonical user. */
  readonly ids: ReadonlyMap<string, string>;
}

/**
 * Deliver through `store.deliver`. Rejects when the store rejects (the
 * content could not be read: the caller maps the reason); per-user storage
 * failures come back as failed recipient results.
 */
export async function deliverToStore(request: StoreDeliveryRequest): Promise<StoreDeliveryResult> {
  const users: MailUser[] = [];
  const firstAddress = new Map<string, string>();
  for (const recipient of request.recipients) {
    for (const user of recipient.users) {
      if (firstAddress.has(user.name)) continue;
      firstAddress.set(user.name, recipient.address);
      users.push(user);
    }
  }
  const outcomes = await request.store.deliver({
    recipients: users,
    content: request.content,
    prefix: (user) => traceHeaders(request.trace, firstAddress.get(user.name), { returnPath: request.withReturnPath !== false }),
    maxBytes: request.maxBytes,
  });
  const byUser = new Map<string, DeliveryOutcome>();
  outcomes.forEach((outcome, i) => byUser.set(users[i]?.name ?? outcome.user, outcome));
  const ids = new Map<string, string>();
  for (const outcome of byUser.values()) if (outcome.ok) ids.set(outcome.user, outcome.id);
  const results = request.recipients.map((recipient): RecipientResult => {
    for (const user of recipient.users) {
      const outcome = byUser.get(user.name);
      if (outcome === undefined) return { ok: false, reply: toSmtpReply(undefined) };
      if (!outcome.ok) return { ok: false, reply: toSmtpReply(outcome.error, request.replyOptions), error: outcome.error };
    }
    return { ok: true };
  });
  return { results, ids };
}

/**
 * One SMTP reply for a whole transaction (RFC 5321 has no per-recipient
 * DATA reply): success only when every copy is durable; otherwise a
 * temporary failure if there is one (the sender retries; users who already
 * have a copy may get it twice, which DESIGN.md accepts for unacknowledged
 * messages), else the first permanent failure.
 */
export function summarise(results: readonly RecipientResult[]): SmtpReplyError | undefined {
  let permanent: SmtpReplyError | undefined;
  for (const result of results) {
    if (result.ok) continue;
    if (isTemporary(result.reply)) return result.reply;
    permanent ??= result.reply;
  }
  return permanent;
}
