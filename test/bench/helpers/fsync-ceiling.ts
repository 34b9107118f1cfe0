/**
 * This machine's ceiling for durable Maildir delivery one message at a time,
 * on raw node:fs: write, fsync, rename tmp -> new, fsync of new/. The figure
 * group commit is measured against (PEERS.md: ~1,400/s on a quiet machine).
 */
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function oneAtATimeRate(count: number, body: Buffer): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), 'maildird-fsync-'));
  try {
    for (const d of ['tmp', 'new']) await mkdir(join(root, d));
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const tmp = join(root, 'tmp', String(i));
      const fh = await open(tmp, 'wx', 0o600);
      await fh.writeFile(body);
      await fh.sync();
      await fh.close();
      await rename(tmp, join(root, 'new', String(i)));
      const dh = await open(join(root, 'new'), constants.O_RDONLY | constants.O_DIRECTORY);
      await dh.sync();
      await dh.close();
    }
    return count / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
