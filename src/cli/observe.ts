/**
 * Feeding /metrics (src/http/server-metrics.ts) from the running parts,
 * without touching protocol code: the POP3 and SMTP servers' typed events
 * (connections, commands by name and result, logins, messages, octets),
 * and a decorator on the storage port for what only the store knows (the
 * time to durability of each delivery, maildrops refused on the lock).
 * The decorator only counts; every call goes to the real store unchanged.
 */
import type { EventEmitter } from 'node:events';
import { isStorageError } from '../errors.js';
import type { ServerMetrics } from '../http/server-metrics.js';
import type { Pop3Server } from '../pop3/server.js';
import type { SmtpServer } from '../smtp/server.js';
import type { DeliveryOutcome, DeliveryRequest, Maildrop, MailStore, MailUser, StoreStats, TrashPurgeResult } from '../storage/store.js';

/**
 * POP3: connections opened and closed, every command by verb and result,
 * logins and failures, messages retrieved and deleted, octets each way;
 * open connections sampled at each scrape.
 */
export function observePop3(server: Pop3Server, metrics: ServerMetrics): () => void {
  const proto = 'pop3';
  const removeSource = metrics.addConnectionSource(proto, () => server.connectionCount);
  const removeListeners = listen(server, {
    ...sessionHandlers(metrics, proto),
    command: (event) => metrics.commands.inc({ proto, command: event.command, result: event.ok ? 'ok' : 'error' }),
    retrieve: () => metrics.retrieved.inc(),
    delete: (event) => metrics.deleted.inc({}, event.messages.length),
  });
  return () => {
    removeSource();
    removeListeners();
  };
}

/**
 * One SMTP listener (`proto`: smtp, submission, smtps, lmtp): connections
 * opened and closed, every command by verb and result (a reply below 400
 * is `ok`), AUTH successes and failures, octets each way; open connections
 * sampled at each scrape. Delivered copies and their latency come from the
 * store (ObservedStore), where durability is decided.
 */
export function observeSmtp(server: SmtpServer, metrics: ServerMetrics, proto: string): () => void {
  const removeSource = metrics.addConnectionSource(proto, () => server.connections, { hasLogins: proto !== 'lmtp' });
  metrics.delivered.touch({ proto });
  const removeListeners = listen(server, {
    ...sessionHandlers(metrics, proto),
    command: (event) => metrics.commands.inc({ proto, command: event.command, result: event.code < 400 ? 'ok' : 'error' }),
  });
  return () => {
    removeSource();
    removeListeners();
  };
}

/** What both front-ends' sessions report alike: opened, logins and failures, closed with octets each way. */
function sessionHandlers(metrics: ServerMetrics, proto: string) {
  return {
    connect: (): void => metrics.connectionsOpened.inc({ proto }),
    login: (): void => metrics.logins.inc({ proto }),
    'login-failed': (): void => metrics.authFailures.inc({ proto }),
    'session-end': (end: { readonly bytesSent: number; readonly bytesReceived: number }): void => {
      metrics.connectionsClosed.inc({ proto });
      metrics.bytesOut.inc({ proto }, end.bytesSent);
      metrics.bytesIn.inc({ proto }, end.bytesReceived);
    },
  };
}

/** Add each handler as a listener of its event; the returned function removes them all. */
function listen<Events extends Record<keyof Events, unknown[]>>(
  emitter: EventEmitter<Events>,
  handlers: { readonly [E in keyof NoInfer<Events>]?: (...args: NoInfer<Events>[E]) => void },
): () => void {
  // The typed EventEmitter's overloads do not take a key of a mapped type; the parameter types above did the checking.
  const untyped = emitter as unknown as EventEmitter;
  const entries = Object.entries(handlers) as [string, (...args: unknown[]) => void][];
  for (const [event, handler] of entries) untyped.on(event, handler);
  return () => {
    for (const [event, handler] of entries) untyped.off(event, handler);
  };
}

/**
 * The store as one listener sees it: delivered copies and the time to
 * durability per delivery, and maildrops refused because they
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
    // The clock starts when the last octet of content has been read: a
    // streamed DATA is consumed as the client sends it, and the client's
    // pace is not the store's latency.
    let contentEnd = this.#now();
    const content = Buffer.isBuffer(request.content) ? request.content : this.#timed(request.content, (at) => (contentEnd = at));
    const outcomes = await this.#store.deliver({ ...request, content });
    const proto = this.#proto;
    const ok = outcomes.filter((outcome) => outcome.ok).length;
    if (ok > 0) {
      this.#metrics.delivered.inc({ proto }, ok);
      this.#metrics.deliveryDuration.observe({ proto }, Math.max(0, this.#now() - contentEnd) / 1000);
    }
    return outcomes;
  }

  async *#timed(source: AsyncIterable<Buffer | Uint8Array>, ended: (at: number) => void): AsyncIterable<Buffer | Uint8Array> {
    for await (const chunk of source) yield chunk;
    ended(this.#now());
  }

  purgeTrash(user: MailUser, olderThan: Date): Promise<TrashPurgeResult> {
    return this.#store.purgeTrash(user, olderThan);
  }

  stats(): StoreStats {
    return this.#store.stats();
  }

  /** The wrapped store belongs to whoever opened it (serve closes it once, after every front-end). */
  async close(): Promise<void> {}
}

