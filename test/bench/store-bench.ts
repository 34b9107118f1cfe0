/**
 * npm run bench:store — the Maildir store's own figures (issue 2):
 *  - listing a 100,000-message maildrop: cold (no maildird cache: a fresh
 *    store and the cache file removed), warm from the cache file in a fresh
 *    store, and warm in the same process (memory);
 *  - the same for names without ,W= (sizes must be computed once, then cached);
 *  - delivery rate with full durability, 20 concurrent senders of 10 KB, and
 *    fsyncs per message (counted by the store), beside this machine's
 *    one-at-a-time ceiling (write + fsync + rename + fsync of new/, raw fs).
 * Figures go to stdout and to test/bench/results/store.json, which the
 * README quotes. "Cold" here is cold for maildird, not for the kernel: the
 * tree is read once before each run so the page cache state is the same
 * for every row (this machine drops idle files after about a minute).
 */
import { mkdtemp, mkdir, writeFile, rm, open, rename, readdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import type { MailUser } from '../../src/storage/store.js';
import { oneAtATimeRate } from './helpers/fsync-ceiling.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 4_000);
const SENDERS = 20;
const BODY = Buffer.from(('x'.repeat(76) + '\n').repeat(130)); // ~10 KB

const here = dirname(fileURLToPath(import.meta.url));
const user: MailUser = { name: 'bench' };

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function makeTree(root: string, count: number, withWireSize: boolean): Promise<void> {
  const cur = join(root, 'bench', 'cur');
  for (const d of ['cur', 'new', 'tmp']) await mkdir(join(root, 'bench', d), { recursive: true, mode: 0o700 });
  const message = Buffer.from('From: a@example.org\nTo: bench@example.org\nSubject: bench\n\nbody line\n');
  const wire = message.length + message.toString('latin1').split('\n').length - 1;
  const base = 1_700_000_000;
  const batch: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const name = withWireSize
      ? `${base + i}.M${i % 1_000_000}P1Q${i}.bench,S=${message.length},W=${wire}:2,S`
      : `${base + i}.M${i % 1_000_000}P1Q${i}.bench:2,S`;
    batch.push(writeFile(join(cur, name), message));
    if (batch.length >= 256) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

async function readTree(dir: string): Promise<void> {
  for (const d of ['cur', 'new']) await readdir(join(dir, d));
}

async function timeOpen(store: MaildirStore): Promise<{ ms: number; count: number }> {
  const start = process.hrtime.bigint();
  const drop = await store.openMaildrop(user);
  const elapsed = ms(start);
  const count = drop.messages.length;
  await drop.release();
  return { ms: elapsed, count };
}

interface ListingRow {
  readonly coldMs: number;
  readonly warmFromCacheFileMs: number;
  readonly warmSameProcessMs: number;
}

async function listingRows(withWireSize: boolean): Promise<ListingRow> {
  const root = await mkdtemp(join(tmpdir(), 'maildird-bench-'));
  try {
    await makeTree(root, MESSAGES, withWireSize);
    // A directory changed within the last second (two on whole-second file
    // systems) is never trusted from a cache (DESIGN: mtime granularity), so
    // a freshly built tree would make every "warm" row a rescan. Let it age.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const dir = join(root, 'bench');
    await readTree(dir);
    const cold = await MaildirStore.open({ root });
    const c = await timeOpen(cold);
    if (c.count !== MESSAGES) throw new Error(`listed ${c.count} of ${MESSAGES}`);
    const warmSame = await timeOpen(cold);
    await cold.close();
    await readTree(dir);
    const fresh = await MaildirStore.open({ root });
    const warmFile = await timeOpen(fresh);
    await fresh.close();
    return { coldMs: c.ms, warmFromCacheFileMs: warmFile.ms, warmSameProcessMs: warmSame.ms };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}


interface DeliveryRow {
  readonly deliveredPerSecond: number;
  readonly fsyncsPerMessage: number;
  readonly delivered: number;
}

async function deliveryRow(): Promise<DeliveryRow> {
  const root = await mkdtemp(join(tmpdir(), 'maildird-deliver-'));
  try {
    const store = await MaildirStore.open({ root });
    const before = store.stats();
    let next = 0;
    const start = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        while (next < DELIVERIES) {
          next++;
          const [outcome] = await store.deliver({ recipients: [user], content: BODY });
          if (!outcome?.ok) throw new Error(`delivery failed: ${JSON.stringify(outcome)}`);
        }
      }),
    );
    const seconds = ms(start) / 1000;
    const after = store.stats();
    await store.close();
    const delivered = after.delivered - before.delivered;
    return {
      deliveredPerSecond: delivered / seconds,
      fsyncsPerMessage: (after.fsyncs - before.fsyncs) / delivered,
      delivered,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const results = {
  date: new Date().toISOString(),
  host: hostname(),
  node: process.version,
  messages: MESSAGES,
  listingWithW: await listingRows(true),
  listingWithoutW: await listingRows(false),
  delivery: { senders: SENDERS, messageBytes: BODY.length, ...(await deliveryRow()) },
  oneAtATimeCeilingPerSecond: await oneAtATimeRate(1_000, BODY),
};

const f = (n: number) => n.toFixed(n < 10 ? 2 : 0);
console.log(`maildird bench:store (${results.node}, ${MESSAGES} messages)`);
console.log(`listing, names with W=:    cold ${f(results.listingWithW.coldMs)} ms, warm (cache file) ${f(results.listingWithW.warmFromCacheFileMs)} ms, warm (same process) ${f(results.listingWithW.warmSameProcessMs)} ms`);
console.log(`listing, names without W=: cold ${f(results.listingWithoutW.coldMs)} ms, warm (cache file) ${f(results.listingWithoutW.warmFromCacheFileMs)} ms, warm (same process) ${f(results.listingWithoutW.warmSameProcessMs)} ms`);
console.log(`delivery, ${SENDERS} concurrent, 10 KB, fsync'd: ${f(results.delivery.deliveredPerSecond)} msg/s, ${f(results.delivery.fsyncsPerMessage)} fsyncs/msg`);
console.log(`machine ceiling, one at a time (write+fsync+rename+fsync new/): ${f(results.oneAtATimeCeilingPerSecond)} msg/s`);
console.log(`ratio delivery / one-at-a-time ceiling: ${(results.delivery.deliveredPerSecond / results.oneAtATimeCeilingPerSecond).toFixed(2)}x`);
const out = resolve(here, 'results', 'store.json');
await writeFile(out, JSON.stringify(results, null, 2) + '\n');
console.log(`written to ${out}`);
