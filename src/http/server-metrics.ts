/**
 * The metrics maildird publishes on `/metrics`, as one object the wiring
 * (src/cli) feeds from the front-ends' events, the store and the user
 * database. Names follow Prometheus conventions: a `maildird_` prefix,
 * `_total` counters, base units (seconds, bytes).
 *
 * Labels: `proto` is the listener a series belongs to (`pop3`, `pop3s` and
 * `pop3` share one POP3 server, so POP3 series say `pop3`; SMTP series say
 * `smtp`, `submission`, `smtps` or `lmtp`; HTTP says `http`).
 */
import { mergeExpositions } from './metrics-merge.js';
import { DEFAULT_SECONDS_BUCKETS, MetricsRegistry, type CollectedSample, type Counter, type Histogram } from './metrics.js';

/** A count owned by a running server, read at each scrape. */
export type Sampler = () => number;

export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  /**
   * Connections whose session started, by protocol: POP3 sessions past the
   * connection limits (a refused one gets its -ERR and is not counted),
   * every SMTP/LMTP connection (one refused by a limit gets its 421 and is
   * counted, and closed), every HTTP connection.
   */
  readonly connectionsOpened: Counter;
  /** Connections whose session has ended, by protocol (with connectionsOpen: every connection seen). */
  readonly connectionsClosed: Counter;
  /** Commands by protocol, verb and result (`ok` / `error`). */
  readonly commands: Counter;
  readonly logins: Counter;
  /** Failed logins (wrong password, unknown user, bad digest), by protocol. */
  readonly authFailures: Counter;
  /** Message copies made durable in a maildrop (one per recipient), by the listener they came in on. */
  readonly delivered: Counter;
  /** Messages sent whole by POP3 RETR. */
  readonly retrieved: Counter;
  /** Messages removed from maildrops by POP3 QUIT (moved to Trash or unlinked). */
  readonly deleted: Counter;
  /** Octets received from clients (commands and message content; after TLS the decrypted octets), by protocol, counted when a connection ends. */
  readonly bytesIn: Counter;
  /** Octets sent to clients (replies and messages), by protocol, counted when a connection ends. */
  readonly bytesOut: Counter;
  /** From the last octet of a message to its copies being durable for all recipients. */
  readonly deliveryDuration: Histogram;
  /** A maildrop refused because another session held its lock (`-ERR [IN-USE]`). */
  readonly lockContention: Counter;
  /** Messages removed from Trash for good by the retention sweeper (trashRetentionDays). */
  readonly trashPurged: Counter;
  /** Reloads of the users file and the certificate pair, by result (`ok` / `refused`). */
  readonly reloads: Counter;
  readonly httpRequests: Counter;
  readonly #open = new Map<string, Sampler[]>();
  readonly #fsyncs: Sampler[] = [];
  /** Pages of other processes (worker processes, src/cli/cluster) summed into scrape(). */
  #remote: (() => Promise<readonly string[]>) | undefined;

  constructor() {
    const r = this.registry;
    r.collectedGauge({
      name: 'maildird_connections_open',
      help: 'Client connections open now, by protocol.',
      labelNames: ['proto'],
      collect: () => this.#sampleOpen(),
    });
    this.connectionsOpened = r.counter({
      name: 'maildird_connections_total',
      help: 'Client connections whose session started, by protocol (POP3: not those refused by a connection limit).',
      labelNames: ['proto'],
    });
    this.connectionsClosed = r.counter({
      name: 'maildird_connections_closed_total',
      help: 'Client connections that ended, by protocol (opened = closed + open).',
      labelNames: ['proto'],
    });
    this.commands = r.counter({
      name: 'maildird_commands_total',
      help: 'Protocol commands by protocol, command and result (ok or error).',
      labelNames: ['proto', 'command', 'result'],
    });
    this.logins = r.counter({ name: 'maildird_logins_total', help: 'Successful logins, by protocol.', labelNames: ['proto'] });
    this.authFailures = r.counter({
      name: 'maildird_auth_failures_total',
      help: 'Failed logins (wrong password, unknown user, bad digest), by protocol.',
      labelNames: ['proto'],
    });
    this.delivered = r.counter({
      name: 'maildird_messages_delivered_total',
      help: 'Message copies made durable in a maildrop (one per recipient), by listener.',
      labelNames: ['proto'],
    });
    this.retrieved = r.counter({ name: 'maildird_messages_retrieved_total', help: 'Messages sent whole by POP3 RETR.' });
    this.deleted = r.counter({ name: 'maildird_messages_deleted_total', help: 'Messages removed from maildrops by POP3 QUIT.' });
    this.bytesIn = r.counter({
      name: 'maildird_received_bytes_total',
      help: 'Octets received from clients (commands and message content, decrypted), by protocol; counted when a connection ends.',
      labelNames: ['proto'],
    });
    this.bytesOut = r.counter({
      name: 'maildird_sent_bytes_total',
      help: 'Octets sent to clients (replies and messages, before encryption), by protocol; counted when a connection ends.',
      labelNames: ['proto'],
    });
    this.deliveryDuration = r.histogram({
      name: 'maildird_delivery_duration_seconds',
      help: 'Time from the last octet of a message to its copies being durable for all recipients (write, fsync, rename, folder fsync).',
      labelNames: ['proto'],
      buckets: DEFAULT_SECONDS_BUCKETS,
    });
    r.collectedCounter({
      name: 'maildird_store_fsyncs_total',
      help: 'fsync calls made by the store (files and folders) since start.',
      collect: () => [[{}, this.#fsyncs.reduce((sum, sample) => sum + sample(), 0)]],
    });
    this.lockContention = r.counter({
      name: 'maildird_lock_contention_total',
      help: 'Maildrops refused because another session held the lock (POP3 -ERR [IN-USE]).',
    });
    this.trashPurged = r.counter({
      name: 'maildird_trash_purged_total',
      help: 'Messages removed from Trash for good by the retention sweeper (trashRetentionDays).',
    });
    this.reloads = r.counter({
      name: 'maildird_reloads_total',
      help: 'Reloads of the users file and the TLS certificate pair, by what and result (ok or refused).',
      labelNames: ['what', 'result'],
    });
    this.httpRequests = r.counter({
      name: 'maildird_http_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['route', 'status'],
    });
    for (const what of ['users', 'tls']) for (const result of ['ok', 'refused']) this.reloads.touch({ what, result });
  }

  /**
   * Count the open connections of a running server under `proto` (read at
   * each scrape), and show its counters at 0 from the start: connections
   * opened and closed, octets each way, and logins and failures for a
   * protocol with logins. Returns the function that stops counting it.
   */
  addConnectionSource(proto: string, open: Sampler, options: { readonly hasLogins?: boolean } = {}): () => void {
    const list = this.#open.get(proto) ?? [];
    list.push(open);
    this.#open.set(proto, list);
    for (const counter of [this.connectionsOpened, this.connectionsClosed, this.bytesIn, this.bytesOut]) counter.touch({ proto });
    if (options.hasLogins ?? true) {
      this.authFailures.touch({ proto });
      this.logins.touch({ proto });
    }
    return () => {
      const index = list.indexOf(open);
      if (index >= 0) list.splice(index, 1);
    };
  }

  /** Read the store's fsync count at each scrape (MailStore.stats().fsyncs). */
  addFsyncSource(fsyncs: Sampler): void {
    this.#fsyncs.push(fsyncs);
  }

  render(): string {
    return this.registry.render();
  }

  /**
   * Count other processes' metrics in scrape(): `pages` gives their
   * rendered registries (worker processes answering the primary).
   */
  setRemoteSource(pages: () => Promise<readonly string[]>): void {
    this.#remote = pages;
  }

  /** What /metrics shows: this registry, summed series by series with the remote pages if any. */
  async scrape(): Promise<string> {
    const own = this.render();
    if (this.#remote === undefined) return own;
    return mergeExpositions([own, ...(await this.#remote())]);
  }

  *#sampleOpen(): Iterable<CollectedSample> {
    for (const [proto, samplers] of this.#open) {
      yield [{ proto }, samplers.reduce((sum, sample) => sum + sample(), 0)];
    }
  }
}
