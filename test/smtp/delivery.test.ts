import t from 'tap';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserDatabase } from '../../src/auth/user-db.js';
import { MemoryStore } from '../../src/storage/memory-store.js';
import { summarise } from '../../src/smtp/delivery.js';
import { REPLIES, replyOf } from '../../src/smtp/replies.js';
import { FsRecorder } from '../helpers/fs-recorder.js';
import { codeOf, type SmtpTestClient } from '../helpers/smtp-client.js';
import { DOMAIN, delivered, leftovers, startSmtp } from '../helpers/smtp-setup.js';

/** alice (no quota), tiny (a 1 KiB quota) and bob. */
function quotaUsers(): UserDatabase {
  return UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}a' },
      { name: 'tiny', password: '{PLAIN}t', extraFields: [{ key: 'userdb_quota_rule', value: '*:storage=1K' }] },
      { name: 'bob', password: '{PLAIN}b' },
    ],
    { localDomains: [DOMAIN], dummyHash: '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE' },
  );
}

async function transaction(c: SmtpTestClient, rcpts: string[], body: string, replies: number): Promise<string[]> {
  c.write(`MAIL FROM:<s@remote.example>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
  const out = (await c.replies(2 + rcpts.length)).map(codeOf);
  c.write(`${body}.\r\n`);
  out.push(...(await c.replies(replies)).map(codeOf));
  return out;
}

/** Every file under the user's folder (tmp, new, cur), to prove nothing partial is left. */
async function allFiles(root: string, user: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['tmp', 'new', 'cur']) {
    try {
      for (const name of await readdir(join(root, user, sub))) out.push(`${sub}/${name}`);
    } catch {
      // no such folder
    }
  }
  return out;
}

t.test('summarise: 250 only when all copies are durable; a temporary failure wins', async (t) => {
  const quota = replyOf(REPLIES.quota);
  const space = replyOf(REPLIES.noSpace);
  t.equal(summarise([{ ok: true }, { ok: true }]), undefined);
  t.equal(summarise([{ ok: true }, { ok: false, reply: quota }]), quota);
  t.equal(summarise([{ ok: false, reply: quota }, { ok: false, reply: space }]), space);
});

t.test('disk full (ENOSPC injected into the real Maildir store): 452 4.3.1, no file anywhere', async (t) => {
  const fs = new FsRecorder();
  const h = await startSmtp(t, { fs, users: quotaUsers() });
  const c = await h.connect();
  await c.ehlo();
  const stop = fs.fail({ op: 'write', path: /\/tmp\//, code: 'ENOSPC' });
  t.same(await transaction(c, ['alice@example.org'], 'Subject: full\r\n\r\nx\r\n', 1), ['250 2.1.0', '250 2.1.5', '354', '452 4.3.1']);
  t.same(await allFiles(h.root ?? '', 'alice'), [], 'no partial file in tmp/ or new/');
  stop();
  const eio = fs.fail({ op: 'fsync', code: 'EIO', times: 1 });
  t.same(await transaction(c, ['alice@example.org'], 'Subject: io\r\n\r\nx\r\n', 1), ['250 2.1.0', '250 2.1.5', '354', '451 4.3.0']);
  eio();
  t.same(await allFiles(h.root ?? '', 'alice'), []);
  t.same(await transaction(c, ['alice@example.org'], 'Subject: ok\r\n\r\nx\r\n', 1), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0'], 'the disk is back');
  await c.quit();
  t.equal((await delivered(h.root ?? '', 'alice')).length, 1);
  t.same(await leftovers(h.root ?? '', 'alice'), []);
});

t.test('over quota: 552 5.2.2 (or 452 4.2.2 when configured); LMTP answers per recipient', async (t) => {
  const big = `Subject: big\r\n\r\n${'x'.repeat(2000)}\r\n`;
  const h = await startSmtp(t, { users: quotaUsers() });
  const c = await h.connect();
  await c.ehlo();
  t.same(await transaction(c, ['tiny@example.org'], big, 1), ['250 2.1.0', '250 2.1.5', '354', '552 5.2.2']);
  t.same(
    await transaction(c, ['alice@example.org', 'tiny@example.org'], big, 1),
    ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '552 5.2.2'],
    'SMTP: one reply; not 250 while a copy failed',
  );
  await c.quit();
  t.same(await allFiles(h.root ?? '', 'tiny'), [], 'nothing for the user over quota');

  const soft = await startSmtp(t, { users: quotaUsers(), quotaIsTemporary: true });
  const d = await soft.connect();
  await d.ehlo();
  t.same(await transaction(d, ['tiny@example.org'], big, 1), ['250 2.1.0', '250 2.1.5', '354', '452 4.2.2']);
  await d.quit();

  const lmtp = await startSmtp(t, { users: quotaUsers(), lmtp: true, authOffered: 'never' });
  const l = await lmtp.connect();
  await l.command('LHLO mta.example');
  t.same(
    await transaction(l, ['alice@example.org', 'tiny@example.org', 'bob@example.org'], big, 3),
    ['250 2.1.0', '250 2.1.5', '250 2.1.5', '250 2.1.5', '354', '250 2.0.0', '552 5.2.2', '250 2.0.0'],
  );
  await l.quit();
  t.equal((await delivered(lmtp.root ?? '', 'alice')).length, 1);
  t.equal((await delivered(lmtp.root ?? '', 'bob')).length, 1);
  t.same(await allFiles(lmtp.root ?? '', 'tiny'), []);
});

t.test('on MemoryStore too: quota, too-large and per-recipient LMTP replies, nothing stored for refusals', async (t) => {
  const store = new MemoryStore({ hostname: 'test' });
  const big = `Subject: big\r\n\r\n${'x'.repeat(2000)}\r\n`;
  const h = await startSmtp(t, { store, users: quotaUsers() });
  const c = await h.connect();
  await c.ehlo();
  t.same(await transaction(c, ['tiny@example.org'], big, 1), ['250 2.1.0', '250 2.1.5', '354', '552 5.2.2']);
  await c.quit();
  const l = await (await startSmtp(t, { store, users: quotaUsers(), lmtp: true, authOffered: 'never', limits: { maxMessageBytes: 5000 } })).connect();
  await l.command('LHLO mta.example');
  t.same(
    await transaction(l, ['alice@example.org', 'tiny@example.org', 'bob@example.org'], big, 3),
    ['250 2.1.0', '250 2.1.5', '250 2.1.5', '250 2.1.5', '354', '250 2.0.0', '552 5.2.2', '250 2.0.0'],
  );
  t.same(
    await transaction(l, ['alice@example.org', 'bob@example.org'], `Subject: x\r\n\r\n${'y'.repeat(6000)}\r\n`, 2),
    ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '552 5.3.4', '552 5.3.4'],
  );
  await l.quit();
  t.same(
    ['alice', 'bob', 'tiny'].map((u) => store.messages(u).length),
    [1, 1, 0],
  );
});

t.test('LMTP: a message refused as a whole gets one reply per recipient', async (t) => {
  const h = await startSmtp(t, { lmtp: true, authOffered: 'never', limits: { maxMessageBytes: 10 } });
  const c = await h.connect();
  await c.command('LHLO mta.example');
  t.same(
    await transaction(c, ['alice@example.org', 'bob@example.org'], 'Subject: too big\r\n\r\n', 2),
    ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '552 5.3.4', '552 5.3.4'],
  );
  t.same(
    await transaction(c, ['alice@example.org', 'bob@example.org'], 'a\r.\r\n', 2),
    ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '550 5.6.0', '550 5.6.0'],
  );
  await c.quit();
});
