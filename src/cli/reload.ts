/**
 * SIGHUP for `maildird serve`: re-read the users file, the aliases file and
 * the certificate pair without dropping a connection. Sessions keep what they hold (a
 * logged-in POP3 session its maildrop, a TLS session its keys); the next
 * login sees the new users, the next handshake the new certificate.
 *
 * A broken new file is refused with a log line and the old one stays:
 * UserDatabase.reload keeps its table when any line is bad, AliasesFile
 * likewise (aliases-file.ts), and
 * TlsContextHolder.reload builds the new context before it swaps (a missing
 * file or a key that does not match the certificate throws first).
 * Reloads run one at a time, in order. The certificate pair is also
 * reloaded alone when its files change (reloadTls, from serve's watcher).
 */
import { readFile } from 'node:fs/promises';
import type { UserDatabase } from '../auth/user-db.js';
import type { AliasesFile } from './aliases-file.js';
import type { ServerMetrics } from '../http/server-metrics.js';
import type { Logger } from '../log/logger.js';
import type { TlsContextHolder, TlsFiles } from '../protocol/tls.js';

export interface ReloadTargets {
  readonly users: UserDatabase;
  /** The aliases file, when the `aliases` key is set. */
  readonly aliases?: AliasesFile | undefined;
  readonly tls: { readonly holder: TlsContextHolder; readonly files: TlsFiles } | undefined;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
}

export type ReloadResult = 'ok' | 'unchanged' | 'refused' | 'none';

export interface ReloadSummary {
  readonly users: ReloadResult;
  readonly aliases: ReloadResult;
  readonly tls: ReloadResult;
}

export class Reloader {
  readonly #targets: ReloadTargets;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(targets: ReloadTargets) {
    this.#targets = targets;
  }

  /** Reload users and certificates now (after any reload in progress). Never rejects. */
  reload(reason: string): Promise<ReloadSummary> {
    const run = this.#queue.then(() => this.#reloadNow(reason));
    this.#queue = run;
    return run;
  }

  /**
   * Reload the certificate pair alone (its files changed), after any reload
   * in progress. Never rejects. 'none' when serve has no certificate.
   */
  reloadTls(reason: string): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reloadTls(reason));
    this.#queue = run;
    return run;
  }

  async #reloadTls(reason: string): Promise<ReloadResult> {
    const { tls, logger, metrics } = this.#targets;
    if (tls === undefined) return 'none';
    let result: ReloadResult;
    try {
      await tls.holder.reload(tls.files, (file) => readFile(file));
      result = 'ok';
      logger.info({ reason, cert: tls.files.certFile, key: tls.files.keyFile }, 'TLS certificate reloaded');
    } catch (err) {
      result = 'refused';
      logger.error(
        { reason, cert: tls.files.certFile, key: tls.files.keyFile, error: (err as Error).message },
        'TLS certificate reload refused; keeping the previous certificate',
      );
    }
    metrics.reloads.inc({ what: 'tls', result: result === 'ok' ? 'ok' : 'refused' });
    return result;
  }

  async #reloadNow(reason: string): Promise<ReloadSummary> {
    const { users, aliases } = this.#targets;
    // UserDatabase logs the outcome and tells its onReload listeners (which count it).
    const event = await users.reload();
    const usersResult: ReloadResult = !event.ok ? 'refused' : event.changed ? 'ok' : 'unchanged';
    // AliasesFile logs the outcome and tells its onReload listeners (serve counts it).
    const aliasesEvent = aliases === undefined ? undefined : await aliases.reload();
    const aliasesResult: ReloadResult =
      aliasesEvent === undefined ? 'none' : !aliasesEvent.ok ? 'refused' : aliasesEvent.changed ? 'ok' : 'unchanged';
    const tlsResult = await this.#reloadTls(reason);
    const summary = { users: usersResult, aliases: aliasesResult, tls: tlsResult };
    this.#targets.logger.info({ reason, ...summary }, 'reload done');
    return summary;
  }
}

/** Call `onHangup` on each SIGHUP (the only place besides signals.ts where serve installs a handler). Returns the remover. */
export function listenForHangup(onHangup: () => void): () => void {
  const handler = (): void => onHangup();
  process.on('SIGHUP', handler);
  return () => {
    process.off('SIGHUP', handler);
  };
}
