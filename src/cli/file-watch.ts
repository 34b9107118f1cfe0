/**
 * Watch a few named files (the certificate and its key) and call back, once
 * per burst of changes, when any of them is written, replaced by rename or
 * re-pointed (a Let's Encrypt `live/` symlink moved to a new archive file).
 * chokidar 4+ watches folders, so each file's folder is watched with the
 * other names filtered out, as the users file is (src/auth/user-db.ts).
 *
 * Correctness never depends on an event arriving (SIGHUP does the same
 * work); the debounce lets a renewal that writes the certificate and then
 * the key be read once, after both.
 */
import { basename, dirname, resolve } from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log/logger.js';

/** Quiet time after the last event before the callback (chokidar throttles 'change' to one per 50 ms per path). */
export const DEFAULT_WATCH_DEBOUNCE_MS = 300;

export interface FileWatch {
  /** Stop watching; a pending callback is dropped. */
  close(): Promise<void>;
}

export interface WatchFilesOptions {
  readonly logger: Logger;
  /** What the files are, for log lines ("TLS certificate"). */
  readonly what: string;
  readonly debounceMs?: number | undefined;
}

/** Resolves once every watcher is ready; never rejects (watcher errors are logged). */
export async function watchFiles(files: readonly string[], onChange: () => void, options: WatchFilesOptions): Promise<FileWatch> {
  const wanted = new Set(files.map((f) => resolve(f)));
  const byFolder = new Map<string, Set<string>>();
  for (const file of wanted) {
    const names = byFolder.get(dirname(file)) ?? new Set<string>();
    names.add(basename(file));
    byFolder.set(dirname(file), names);
  }
  let debounce: NodeJS.Timeout | undefined;
  let isClosed = false;
  const fire = (): void => {
    if (isClosed) return;
    if (debounce !== undefined) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      if (!isClosed) onChange();
    }, options.debounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS);
  };
  const watchers: FSWatcher[] = [];
  for (const [folder, names] of byFolder) {
    const watcher = chokidarWatch(folder, {
      depth: 0,
      ignoreInitial: true,
      ignored: (path: string) => path !== folder && !names.has(basename(path)),
    });
    watchers.push(watcher);
    watcher.on('all', (_event, path) => {
      if (wanted.has(resolve(path))) fire();
    });
    watcher.on('error', (err) => options.logger.error({ err, folder }, `${options.what} watcher failed`));
    await new Promise<void>((ready) => watcher.once('ready', () => ready()));
  }
  return {
    async close() {
      isClosed = true;
      if (debounce !== undefined) clearTimeout(debounce);
      await Promise.all(watchers.map((w) => w.close()));
    },
  };
}
