/**
 * Dovecot quota rules as passwd-file extra fields carry them:
 * `userdb_quota_rule=*:storage=100M`, `userdb_quota_rule2=*:messages=1000`,
 * or both in one rule (`*:storage=1G:messages=5000`), after Dovecot's
 * quota-util.c:
 * - `storage=N` counts KiB unless a suffix says otherwise (B, k, M, G, T,
 *   any case); `bytes=N` counts bytes; `messages=N` counts messages;
 * - 0 means unlimited.
 * Only rules for every mailbox (`*`) matter to a POP3/SMTP server (the
 * maildrop is INBOX); rules for named mailboxes, relative limits (`+10M`,
 * `-5%`, `50%`) and `ignore` are reported as ignored, so an existing Dovecot
 * file loads with a warning instead of being refused.
 */

export interface QuotaLimits {
  /** Bytes; 0 unlimited. */
  readonly bytes?: number;
  /** Messages; 0 unlimited. */
  readonly messages?: number;
}

export type QuotaRuleResult =
  | { readonly ok: true; readonly limits: QuotaLimits; readonly ignored: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const MULTIPLIERS: Readonly<Record<string, number>> = {
  B: 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/**
 * A Dovecot size: digits and an optional B/k/M/G/T suffix (any case);
 * `unit` applies when there is no suffix. undefined when invalid or beyond
 * 2^53 (no mailbox is that big; it is a typo).
 */
export function parseDovecotSize(text: string, unit = 1): number | undefined {
  const m = /^(\d{1,16})([bkmgtBKMGT]?)$/.exec(text);
  if (m === null) return undefined;
  const [, digits, suffix] = m as unknown as [string, string, string];
  const multiplier = suffix === '' ? unit : (MULTIPLIERS[suffix.toUpperCase()] ?? 1);
  const value = Number(digits) * multiplier;
  return Number.isSafeInteger(value) ? value : undefined;
}

/** The shortest exact Dovecot spelling of a byte count (`100M`, `1536k`, `7B`). */
export function formatDovecotSize(bytes: number): string {
  if (bytes === 0) return '0';
  for (const suffix of ['T', 'G', 'M'] as const) {
    const m = MULTIPLIERS[suffix] ?? 1;
    if (bytes % m === 0) return `${bytes / m}${suffix}`;
  }
  return bytes % 1024 === 0 ? `${bytes / 1024}k` : `${bytes}B`;
}

/** Parse one rule value (what follows `quota_rule=`). */
export function parseQuotaRule(rule: string): QuotaRuleResult {
  const colon = rule.indexOf(':');
  if (colon <= 0) return { ok: false, reason: `quota rule "${rule}" has no "mailbox:" part` };
  const mailbox = rule.slice(0, colon);
  const parts = rule.slice(colon + 1).split(':');
  if (mailbox !== '*') return { ok: true, limits: {}, ignored: [`quota rule for mailbox "${mailbox}" (only "*" applies)`] };
  let bytes: number | undefined;
  let messages: number | undefined;
  const ignored: string[] = [];
  for (const part of parts) {
    if (part === 'ignore' || part === 'noenforcing') {
      ignored.push(`quota rule "${part}"`);
      continue;
    }
    const eq = part.indexOf('=');
    const key = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    if (key !== 'storage' && key !== 'bytes' && key !== 'messages') {
      return { ok: false, reason: `unknown quota limit "${key}" in "${rule}"` };
    }
    if (/^[+-]|%$/.test(value)) {
      ignored.push(`relative quota limit ${key}=${value}`);
      continue;
    }
    const parsed = parseDovecotSize(value, key === 'storage' ? 1024 : 1);
    if (parsed === undefined) return { ok: false, reason: `bad quota value ${key}=${value}` };
    if (key === 'messages') messages = parsed;
    else bytes = parsed;
  }
  const limits: QuotaLimits = {
    ...(bytes === undefined ? {} : { bytes }),
    ...(messages === undefined ? {} : { messages }),
  };
  return { ok: true, limits, ignored };
}
