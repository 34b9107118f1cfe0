/**
 * The aliases file behind the `aliases` config key: read at start-up,
 * re-read when it changes (file-watch.ts: a chokidar watch on its folder)
 * and on SIGHUP (reload.ts).
 *
 * The AliasTable (src/smtp/aliases.ts) is shared by every SMTP/LMTP
 * listener's recipient policy and swapped whole, so a live session's next
 * RCPT sees the new aliases and never half a file. A new file that cannot
 * be read or parsed is refused with one log line naming the line at fault,
 * and the previous aliases stay in force. Reloads run one at a time.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { AliasTable } from '../smtp/aliases.js';
import { watchFiles, type FileWatch } from './file-watch.js';

/** Quiet time after the last file event before a reload (see user-db.ts: chokidar's 50 ms change throttle). */
const DEFAULT_DEBOUNCE_MS = 150;
const MIN_DEBOUNCE_MS = 100;

export interface AliasesFileOptions {
  readonly logger?: Logger | undefined;
  /** Quiet time after the last file event before a reload; default 150 ms, at least 100 ms. */
  readonly debounceMs?: number | undefined;
}

/** One reload attempt: `changed` false when the bytes were the same; `reason` says why a file was refused. */
export type AliasesReloadEvent =
  | { readonly ok: true; readonly changed: boolean; readonly aliases: number }
  | { readonly ok: false; readonly reason: string };

export class AliasesFile {
  /** The live table: hand it to createSmtpServer / RecipientPolicy. */
  readonly table: AliasTable;
  /** Absolute path of the file. */
  readonly path: string;
  readonly #logger: Logger;
  readonly #debounceMs: number;
  readonly #listeners = new Set<(event: AliasesReloadEvent) => void>();
  #text: string;
  #watch: FileWatch | undefined;
  #reloads: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(path: string, text: string, table: AliasTable, options: AliasesFileOptions) {
    this.path = path;
    this.#text = text;
    this.table = table;
    this.#logger = options.logger ?? silentLogger();
    this.#debounceMs = Math.max(MIN_DEBOUNCE_MS, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  /** Read and parse the file; a missing, unreadable or broken file is a ConfigError naming the key `aliases`. */
  static async load(file: string, options: AliasesFileOptions = {}): Promise<AliasesFile> {
    const path = resolve(file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`aliases ${path}: ${(err as Error).message}`, { key: 'aliases', cause: err });
    }
    const aliases = new AliasesFile(path, text, new AliasTable(text, path), options);
    aliases.#logger.info({ file: path, aliases: aliases.table.size }, 'aliases file loaded');
    return aliases;
  }

  /** Be told about every reload attempt (metrics). Returns the unsubscribe function. */
  onReload(listener: (event: AliasesReloadEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-read the file now (SIGHUP). Never rejects; one log line per outcome. */
  reload(): Promise<AliasesReloadEvent> {
    const run = this.#reloads.then(() => this.#reloadNow());
    this.#reloads = run;
    return run;
  }

  async #reloadNow(): Promise<AliasesReloadEvent> {
    let event: AliasesReloadEvent;
    try {
      const text = await readFile(this.path, 'utf8');
      if (text === this.#text) {
        event = { ok: true, changed: false, aliases: this.table.size };
      } else {
        this.table.reload(text, this.path); // throws before swapping: the old table stays
        this.#text = text;
        event = { ok: true, changed: true, aliases: this.table.size };
        this.#logger.info({ file: this.path, aliases: this.table.size }, 'aliases file reloaded');
      }
    } catch (err) {
      event = { ok: false, reason: (err as Error).message };
      this.#logger.error({ file: this.path, reason: event.reason }, 'aliases file refused, keeping the previous aliases');
    }
    for (const listener of this.#listeners) listener(event);
    return event;
  }

  /**
   * Reload when the file changes, including an atomic replace by rename.
   * Watches the file's folder and filters on the name (chokidar 4+ watches
   * folders). Resolves once the watcher is ready; never rejects. Correctness
   * never depends on it: reload() is there for SIGHUP.
   */
  async watch(): Promise<void> {
    if (this.#watch !== undefined || this.#closed) return;
    const watch = await watchFiles([this.path], () => void this.reload(), {
      logger: this.#logger,
      what: 'aliases file',
      debounceMs: this.#debounceMs,
    });
    // close() may have run while the watcher was getting ready.
    if (this.#closed || this.#watch !== undefined) await watch.close();
    else this.#watch = watch;
  }

  /** Stop watching and wait for a reload in progress. The table stays usable. */
  async close(): Promise<void> {
    this.#closed = true;
    const watch = this.#watch;
    this.#watch = undefined;
    await watch?.close();
    await this.#reloads;
  }
}
