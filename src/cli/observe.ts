/**
 * Feeding /metrics (src/http/server-metrics.ts) from the running parts,
 * without touching protocol code: the POP3 server's typed events, and
 * decorators on the two ports every front-end uses (the MailStore for
 * deliveries and lock contention, the Authenticator for SMTP logins).
 * The decorators only count; every call goes to the real part unchanged.
 *
 * What the front-ends do not report yet (no event for it) is not guessed:
 * see the list in each function's comment.
 */
import type { Authenticator } from '../auth/authenticator.js';
import { isStorageError } from '../errors.js';
import type { ServerMetrics } from '../http/server-metrics.js';
import type { Pop3Server } from '../pop3/server.js';
import type { DeliveryOutcome, DeliveryRequest, Maildrop, MailStore, MailUser, StoreStats } from '../storage/store.js';

/**
 * POP3: logins and failures (PASS, APOP, AUTH by result), RETR, deletions,
 * octets sent and closed connections, from the server's events; open
 * connections sampled at each scrape. Not available from events: the other
 * commands (LIST, UIDL, TOP, DELE, ...) and octets received.
 */
export function observePop3(server: Pop3Server, metrics: ServerMetrics): () => void {
  const proto = 'pop3';
  const removeSource = metrics.addConnectionSource(proto, () => server.connectionCount);
  const onLogin = (event: { readonly mechanism: string }): void => {
    metrics.logins.inc({ proto });
    metrics.commands.inc({ proto, command: loginCommand(event.mechanism), result: 'ok' });
  };
  const onLoginFailed = (event: { readonly mechanism: string }): void => {
    metrics.authFailures.inc({ proto });
    metrics.commands.inc({ proto, command: loginCommand(event.mechanism), result: 'error' });
  };
  const onRetrieve = (): void => {
    metrics.retrieved.inc();
    metrics.commands.inc({ proto, command: 'RETR', result: 'ok' });
  };
  const onDelete = (event: { readonly messages: readonly unknown[] }): void => metrics.deleted.inc({}, event.messages.length);
  const onSessionEnd = (summary: { readonly bytesSent: number }): void => {
    metrics.connectionsClosed.inc({ proto });
    metrics.bytesOut.inc({ proto }, summary.bytesSent);
  };
  server.on('login', onLogin);
  server.on('login-failed', onLoginFailed);
  server.on('retrieve', onRetrieve);
  server.on('delete', onDelete);
  server.on('session-end', onSessionEnd);
  return () => {
    removeSource();
    server.off('login', onLogin);
    server.off('login-failed', onLoginFailed);
    server.off('retrieve', onRetrieve);
    server.off('delete', onDelete);
    server.off('session-end', onSessionEnd);
  };
}

/** `USER` (USER/PASS) -> PASS, `APOP` -> APOP, `SASL PLAIN` -> AUTH: the command that carried the credentials. */
function loginCommand(mechanism: string): string {
  if (mechanism === 'USER') return 'PASS';
  if (mechanism.startsWith('SASL')) return 'AUTH';
  return mechanism;
}

/**
 * The store as one listener sees it: delivered copies, content octets and
 * the time to durability per delivery, and maildrops refused because they
 * were locked ('in-use'). Everything else passes straight through.
 */
export class ObservedStore implements MailStore {
  readonly #store: MailStore;
  readonly #metrics: ServerMetrics;
  readonly #proto: string;
  readonly #now: () => number;

  constructor(store: MailStore, metrics: ServerMetrics, proto: string, now: () => number = () => performance.now()) {
    this.#store = store;
    this.#metrics = metrics;
    this.#proto = proto;
    this.#now = now;
  }

  async openMaildrop(user: MailUser): Promise<Maildrop> {
    try {
      return await this.#store.openMaildrop(user);
    } catch (err) {
      if (isStorageError(err, 'in-use')) this.#metrics.lockContention.inc();
      throw err;
    }
  }

  async deliver(request: DeliveryRequest): Promise<DeliveryOutcome[]> {
    let octets = 0;
    const content = Buffer.isBuffer(request.content) ? request.content : counted(request.content, (n) => (octets += n));
    if (Buffer.isBuffer(content)) octets = content.length;
    const started = this.#now();
    const outcomes = await this.#store.deliver({ ...request, content });
    const proto = this.#proto;
    const ok = outcomes.filter((outcome) => outcome.ok).length;
    this.#metrics.bytesIn.inc({ proto }, octets);
    if (ok > 0) {
      this.#metrics.delivered.inc({ proto }, ok);
      this.#metrics.deliveryDuration.observe({ proto }, (this.#now() - started) / 1000);
    }
    return outcomes;
  }

  stats(): StoreStats {
    return this.#store.stats();
  }

  /** The wrapped store belongs to whoever opened it (serve closes it once, after every front-end). */
  async close(): Promise<void> {}
}

async function* counted(source: AsyncIterable<Buffer | Uint8Array>, add: (octets: number) => void): AsyncIterable<Buffer | Uint8Array> {
  for await (const chunk of source) {
    add(chunk.length);
    yield chunk;
  }
}

/**
 * The user database as one SMTP listener sees it: AUTH results and failed
 * logins counted. Not available without an SMTP event: the other commands
 * (EHLO, MAIL, RCPT, DATA, ...), connections opened or closed, octets sent.
 */
export class ObservedAuthenticator implements Authenticator {
  readonly #users: Authenticator;
  readonly #metrics: ServerMetrics;
  readonly #proto: string;

  constructor(users: Authenticator, metrics: ServerMetrics, proto: string) {
    this.#users = users;
    this.#metrics = metrics;
    this.#proto = proto;
  }

  lookup(loginOrAddress: string): MailUser | undefined {
    return this.#users.lookup(loginOrAddress);
  }

  async verifyPassword(login: string, password: string): Promise<MailUser | undefined> {
    return this.#count(await this.#users.verifyPassword(login, password));
  }

  async verifyDigest(mechanism: 'APOP' | 'CRAM-MD5', login: string, challenge: string, digestHex: string): Promise<MailUser | undefined> {
    return this.#count(await this.#users.verifyDigest(mechanism, login, challenge, digestHex));
  }

  hasSharedSecrets(): boolean {
    return this.#users.hasSharedSecrets();
  }

  #count(user: MailUser | undefined): MailUser | undefined {
    const proto = this.#proto;
    if (user === undefined) this.#metrics.authFailures.inc({ proto });
    else this.#metrics.logins.inc({ proto });
    this.#metrics.commands.inc({ proto, command: 'AUTH', result: user === undefined ? 'error' : 'ok' });
    return user;
  }
}
