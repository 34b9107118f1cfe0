/**
 * The checks behind /healthz: the root can be written (a probe file is
 * created in it and removed, which fails on a read-only mount, a full
 * inode table or a root that is no longer a folder, even for root, whom
 * permission bits do not stop), and every listener is up.
 *
 * The write probe belongs to the store; until the port has a
 * `MailStore.health?()` (asked of the lead), the CLI, which already checks
 * the root at start (preflight.ts), does it here.
 */
import { open, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { HealthReport } from '../http/server.js';

export interface ListenerState {
  readonly name: string;
  readonly address: string;
  readonly isUp: boolean;
}

let probeCounter = 0;

/** Create and remove a dot file in `root` (dot files are never mail: no listing shows them). */
export async function probeWritable(root: string): Promise<{ ok: boolean; detail: string }> {
  const probe = path.join(root, `.maildird-health.${process.pid}.${++probeCounter}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
    await rm(probe, { force: true });
    return { ok: true, detail: `${root} is writable` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { ok: false, detail: `${root} is not writable (${code})` };
  }
}

export async function healthReport(root: string, listeners: () => readonly ListenerState[]): Promise<HealthReport> {
  const store = await probeWritable(root);
  const checks = [{ name: 'store', ...store }];
  for (const listener of listeners()) {
    checks.push({ name: `listener ${listener.name}`, ok: listener.isUp, detail: `${listener.address} ${listener.isUp ? 'up' : 'down'}` });
  }
  return { ok: checks.every((check) => check.ok), checks };
}
