/**
 * This machine's ceilings for durable Maildir delivery on raw node:fs, no
 * protocol and no store code: write, fsync, rename tmp -> new, fsync of
 * new/.
 *
 * - oneAtATimeRate: one message after another, each with its own fsync of
 *   new/. The figure group commit is measured against (PEERS.md: ~1,400/s
 *   on a quiet machine).
 * - concurrentRate: `writers` messages in flight (as 20 SMTP senders give),
 *   the fsyncs of new/ shared the way group-commit.ts shares them (one
 *   running, the next one starting when it ends and covering every rename
 *   finished meanwhile). What the disk allows a server here; the gap
 *   between it and the server's rate is the server's own work.
 *
 * Given a `parent` folder, both write into a new folder inside it and
 * leave the files for the caller to remove with the parent, so that the
 * deletions land where and when the caller decides (smtp-bench.ts says why:
 * ext4's recently deleted inodes). Without one, they use a folder under the
 * system temp folder and remove it.
 */
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CeilingRun {
  readonly perSecond: number;
  /** CPU of this process (user + system, the pool threads included) per message, ms. */
  readonly cpuMsPerMessage: number;
}

async function maildir(parent: string | undefined): Promise<string> {
  const root = await mkdtemp(join(parent ?? tmpdir(), 'maildird-fsync-'));
  for (const d of ['tmp', 'new']) await mkdir(join(root, d));
  return root;
}

async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

async function writeDurably(root: string, name: string, body: Buffer): Promise<void> {
  const tmp = join(root, 'tmp', name);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(root, 'new', name));
}

async function cleanUp(root: string, parent: string | undefined): Promise<void> {
  if (parent === undefined) await rm(root, { recursive: true, force: true });
}

export async function oneAtATimeRate(count: number, body: Buffer, parent?: string): Promise<number> {
  const root = await maildir(parent);
  try {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      await writeDurably(root, String(i), body);
      await fsyncDir(join(root, 'new'));
    }
    return count / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await cleanUp(root, parent);
  }
}

export async function concurrentRate(count: number, body: Buffer, writers: number, parent?: string): Promise<CeilingRun> {
  const root = await maildir(parent);
  const newDir = join(root, 'new');
  // Shared fsyncs of new/: `running` covers renames finished before it
  // started; callers arriving while it runs wait for the next one.
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const sync = (): Promise<void> => {
    if (running === undefined) {
      running = fsyncDir(newDir).finally(() => (running = undefined));
      return running;
    }
    next ??= running.then(() => {
      next = undefined;
      return sync();
    });
    return next;
  };
  try {
    let issued = 0;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (issued < count) {
          const name = String(issued++);
          await writeDurably(root, name, body);
          await sync();
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    return { perSecond: count / seconds, cpuMsPerMessage: (cpu.user + cpu.system) / 1000 / count };
  } finally {
    await cleanUp(root, parent);
  }
}
