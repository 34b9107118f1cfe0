/**
 * Child process for the cross-process delivery test
 * (test/storage/maildir/deliver.test.ts): delivers `count` messages, all at
 * once, into `user`'s folder under `root`, then prints one JSON line with
 * the outcomes. Run with `node --import tsx` (no build needed).
 *
 * argv[2]: JSON { root, user, count, tag }
 */
import { MaildirDeliverer } from '../../src/storage/maildir/deliver.js';
import { nodeFs } from '../../src/storage/maildir/fs.js';
import { detectForm, resolveUserDir } from '../../src/storage/maildir/layout.js';

interface Job {
  readonly root: string;
  readonly user: string;
  readonly count: number;
  readonly tag: string;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const deliverer = new MaildirDeliverer({ fs: nodeFs, hostname: 'child.test' });
const resolve = async (user: { name: string }) => {
  const dir = resolveUserDir(job.root, '%u', user);
  return { dir, form: await detectForm(nodeFs, dir) };
};

const outcomes = await Promise.all(
  Array.from({ length: job.count }, (_, i) =>
    deliverer.deliver(
      {
        recipients: [{ name: job.user }],
        content: Buffer.from(`Subject: ${job.tag}-${i}\r\n\r\nfrom ${job.tag} number ${i}\r\n`),
      },
      resolve,
    ),
  ),
);
const ids = outcomes.flat().map((o) => (o.ok ? o.id : `FAILED ${o.error.kind} ${o.error.message}`));
process.stdout.write(`${JSON.stringify({ tag: job.tag, ids, stats: deliverer.stats })}\n`);
