/**
 * A census of a Maildir tree after a fuzz or crash run: every message file
 * of every user, where it is (maildrop or Trash), its base name and a hash
 * of its bytes, plus whatever must not be left behind (tmp files, batch
 * journals, session locks). Read straight from the file system, never
 * through the store under test.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMaildirName } from '../../../src/storage/maildir/filename.ts';

export interface CensusMessage {
  readonly where: 'maildrop' | 'trash';
  /** Subfolder relative to the user folder (`new`, `cur`, `.Trash/cur`...). */
  readonly folder: string;
  readonly name: string;
  readonly base: string;
  readonly sha: string;
}

export interface UserCensus {
  readonly messages: readonly CensusMessage[];
  /** tmp/ and .Trash/tmp/ entries, lock and journal files: must be empty once every session ended. */
  readonly leftovers: readonly string[];
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export async function userCensus(userDir: string): Promise<UserCensus> {
  const messages: CensusMessage[] = [];
  const leftovers: string[] = [];
  const folders: [string, 'maildrop' | 'trash'][] = [
    ['new', 'maildrop'],
    ['cur', 'maildrop'],
    ['.Trash/new', 'trash'],
    ['.Trash/cur', 'trash'],
  ];
  for (const [folder, where] of folders) {
    for (const name of await names(join(userDir, folder))) {
      const parsed = parseMaildirName(name);
      if (parsed === undefined) continue;
      const file = join(userDir, folder, name);
      if (!(await lstat(file)).isFile()) continue;
      const sha = createHash('sha256').update(await readFile(file)).digest('hex');
      messages.push({ where, folder, name, base: parsed.base, sha });
    }
  }
  for (const tmp of ['tmp', '.Trash/tmp']) for (const n of await names(join(userDir, tmp))) leftovers.push(`${tmp}/${n}`);
  for (const n of await names(userDir)) {
    if (n === 'maildird.lock' || n.endsWith('.journal') || n.startsWith('maildird-batch')) leftovers.push(n);
  }
  return { messages, leftovers };
}

/** Hash of a stored message as delivered (for comparing with a census). */
export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Multiset of hashes: hash -> count. */
export function hashCounts(messages: readonly CensusMessage[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m.sha, (counts.get(m.sha) ?? 0) + 1);
  return counts;
}
