/**
 * Who may receive mail here (DESIGN.md "Sessions and protocols"): local
 * users of local domains only, after aliases and `user+tag` subaddressing.
 * maildird is never a relay: a non-local domain gets 554 5.7.1 whether or
 * not the client authenticated (relaying is not configurable yet).
 *
 * Routing syntax is never interpreted (RFC 5321 3.6.1 and appendix C,
 * RFC 2505 section 2.6): `user%other@local` (the percent hack),
 * `other!user@local` (bang paths) and quoted local parts hiding an `@` are
 * just local parts no user has, so they get 550 5.1.1. Source routes
 * (`@a,@b:user@local`) are removed by smtp-server as RFC 5321 4.1.2
 * requires, leaving the final address, which this policy then judges.
 */
import { domainToUnicode } from 'node:url';
import type { Authenticator } from '../auth/authenticator.js';
import type { SmtpReplyError } from '../errors.js';
import type { MailUser } from '../storage/store.js';
import type { AliasTable } from './aliases.js';
import { REPLIES, withText } from './replies.js';

export interface RecipientPolicyOptions {
  readonly users: Authenticator;
  /** Local domains (ASCII/punycode or Unicode, any case). */
  readonly localDomains: readonly string[];
  readonly aliases?: AliasTable | undefined;
  /** Subaddress delimiter (`user+tag@`); false turns subaddressing off. Default `+`. */
  readonly subaddressDelimiter?: string | false | undefined;
  /** Alias-to-alias nesting limit (a loop in the file ends here). Default 10. */
  readonly maxAliasDepth?: number | undefined;
}

export type RecipientResolution =
  | { readonly ok: true; readonly address: string; readonly users: readonly MailUser[] }
  | { readonly ok: false; readonly address: string; readonly reply: SmtpReplyError };

/** Characters no local user's name contains that route mail elsewhere in old mailers. */
const ROUTING_CHARS = /[%!@:,\s"\\<>()[\];]/;

export class RecipientPolicy {
  readonly #users: Authenticator;
  readonly #domains: ReadonlySet<string>;
  readonly #aliases: AliasTable | undefined;
  readonly #delimiter: string | false;
  readonly #maxDepth: number;

  constructor(options: RecipientPolicyOptions) {
    this.#users = options.users;
    this.#domains = new Set(options.localDomains.map(normaliseDomain));
    this.#aliases = options.aliases;
    this.#delimiter = options.subaddressDelimiter ?? '+';
    this.#maxDepth = options.maxAliasDepth ?? 10;
  }

  /** The first local domain, for the domainless `postmaster` (RFC 5321 4.1.1.3). */
  get primaryDomain(): string | undefined {
    return this.#domains.values().next().value;
  }

  isLocalDomain(domain: string): boolean {
    return this.#domains.has(normaliseDomain(domain));
  }

  /**
   * Resolve one RCPT address (as smtp-server parsed it: source route gone,
   * domain in Unicode) to local users, or to the reply that refuses it.
   */
  resolve(address: string): RecipientResolution {
    const users = new Map<string, MailUser>();
    const outcome = this.#resolveInto(address, users, 0);
    if (outcome !== undefined) return { ok: false, address, reply: outcome };
    return { ok: true, address, users: [...users.values()] };
  }

  /** Adds the users `address` reaches; returns the refusal when it reaches none. */
  #resolveInto(address: string, into: Map<string, MailUser>, depth: number): SmtpReplyError | undefined {
    const split = splitAddress(address);
    let local = split.local;
    let domain = split.domain;
    if (domain === undefined) {
      // Only the domainless postmaster gets past smtp-server's parser.
      if (local.toLowerCase() !== 'postmaster' || this.primaryDomain === undefined) return unknown(address);
      domain = this.primaryDomain;
    }
    domain = normaliseDomain(domain);
    const unquoted = unquoteLocalPart(local);
    if (unquoted === undefined) return unknown(address);
    local = unquoted;
    if (!this.#domains.has(domain) && !this.#isUserDomain(local, domain)) {
      return withText(REPLIES.relayDenied, `<${address}>: Relay access denied`);
    }
    if (local === '' || ROUTING_CHARS.test(local)) return unknown(address);
    // RFC 5321 4.5.1: "postmaster" is recognised without regard to case.
    if (local.toLowerCase() === 'postmaster') local = 'postmaster';

    const candidates = [local];
    if (this.#delimiter !== false) {
      const at = local.indexOf(this.#delimiter);
      if (at > 0) candidates.push(local.slice(0, at));
    }
    for (const candidate of candidates) {
      const targets = this.#aliases?.expand(candidate, domain);
      if (targets !== undefined) {
        if (depth >= this.#maxDepth) return withText(REPLIES.unknownUser, `<${address}>: alias nesting too deep`);
        const before = into.size;
        for (const target of targets) {
          const full = target.includes('@') ? target : `${target}@${domain}`;
          // A target that is not local (or unknown) is skipped: aliases never relay.
          this.#resolveInto(full, into, depth + 1);
        }
        if (into.size > before) return undefined;
        return withText(REPLIES.unknownUser, `<${address}>: alias has no local recipients`);
      }
      const user = this.#lookup(candidate, domain);
      if (user !== undefined) {
        into.set(user.name, user);
        return undefined;
      }
    }
    return unknown(address);
  }

  /**
   * The canonical user for `local@domain`: a full-address user first, then a
   * bare name, which is valid in every local domain; a bare lookup that
   * lands on a full-address user of another domain does not count.
   */
  #lookup(local: string, domain: string): MailUser | undefined {
    const full = this.#users.lookup(`${local}@${domain}`);
    if (full !== undefined && userDomainMatches(full, domain)) return full;
    const bare = this.#users.lookup(local);
    if (bare !== undefined && userDomainMatches(bare, domain)) return bare;
    return undefined;
  }

  /** A domain not listed is still local for a user whose canonical name is that full address. */
  #isUserDomain(local: string, domain: string): boolean {
    const user = this.#users.lookup(`${local}@${domain}`);
    return user !== undefined && user.name.includes('@') && userDomainMatches(user, domain);
  }
}

function unknown(address: string): SmtpReplyError {
  return withText(REPLIES.unknownUser, `<${address}>: Recipient address rejected: User unknown`);
}

function userDomainMatches(user: MailUser, domain: string): boolean {
  const at = user.name.lastIndexOf('@');
  return at === -1 || normaliseDomain(user.name.slice(at + 1)) === domain;
}

function splitAddress(address: string): { local: string; domain: string | undefined } {
  const at = address.lastIndexOf('@');
  if (at === -1) return { local: address, domain: undefined };
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** Lower case, Unicode form (smtp-server hands over IDNs decoded), no trailing dot. */
export function normaliseDomain(domain: string): string {
  const lower = domain.toLowerCase().replace(/\.$/, '');
  if (lower.startsWith('[')) return lower;
  const unicode = domainToUnicode(lower);
  return unicode === '' ? lower : unicode;
}

/**
 * RFC 5321 4.1.2 quoted-string local part: `"alice"` is `alice`. Returns
 * undefined for a broken quoted string. What the quotes held is then
 * judged like any local part (so `"a%b"` is still refused).
 */
export function unquoteLocalPart(local: string): string | undefined {
  if (!local.startsWith('"')) return local;
  if (local.length < 2 || !local.endsWith('"')) return undefined;
  let out = '';
  for (let i = 1; i < local.length - 1; i++) {
    const ch = local[i];
    if (ch === '\\') {
      i++;
      if (i >= local.length - 1) return undefined;
      out += local[i];
    } else if (ch === '"') {
      return undefined;
    } else {
      out += ch;
    }
  }
  return out;
}
