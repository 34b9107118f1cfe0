/**
 * Durability before acknowledgement, per front-end (issue 6, DESIGN
 * invariant 1): SIGKILL keeps the page cache, so the crash harness cannot
 * show that data reaches the disk. This shows it through the store's
 * injectable FsLayer instead: for SMTP's 250, POP3's QUIT `+OK` and
 * `maildird deliver`'s success (deliverLocal, whose result is the exit
 * code), the file fsync, the rename (or link/unlink) and the directory
 * fsync complete before the acknowledgement is sent.
 *
 * Each test holds the last directory fsync, proves the acknowledgement
 * has not gone out while it is held (a second connection's round trip
 * through the same server shows the event loop moved on), then releases
 * it and checks the recorded order. (test/storage/maildir/deliver.test.ts
 * and journal.test.ts check the store's own order in more detail.)
 */
import t from 'tap';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { UserDatabase } from '../../src/auth/user-db.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { deliverLocal } from '../../src/smtp/local-delivery.js';
import { FsRecorder, gate, type FsCall } from '../helpers/fs-recorder.js';
import { startSmtp, DOMAIN } from '../helpers/smtp-setup.js';
import { startPop3 } from '../helpers/pop3-harness.js';

/** Wait (bounded, by turns of the event loop) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (cond()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

const inFlight = (calls: FsCall[]) => calls.some((c) => c.end === undefined);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('SMTP: file fsync < rename < fsync of new/ < 250', async (t) => {
  const fs = new FsRecorder();
  const h = await startSmtp(t, { fs });
  const c = await h.connect();
  await c.ehlo();
  const hold = gate();
  fs.fail({ op: 'fsyncDir', path: /\/new$/, wait: hold.promise, times: 1 });
  c.write(`MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@${DOMAIN}>\r\nDATA\r\n`);
  await c.replies(3);
  c.write('Subject: durable\r\n\r\nbody\r\n.\r\n');
  await until(() => inFlight(fs.ops('fsyncDir', /\/new$/)), 'the fsync of new/ starts');
  const other = await h.connect();
  await other.ehlo();
  t.notMatch(c.transcript, /250 2\.0\.0/, 'no 250 while the fsync of new/ is held');
  hold.open();
  const reply = await c.reply();
  const ack = fs.mark('250');
  t.equal(reply.code, 250);
  const rename = fs.ops('rename').find((r) => /\/tmp\//.test(r.path) && /\/new\//.test(r.to ?? ''));
  const fileSync = fs.ops('fsync', /\/tmp\//)[0];
  const dirSync = fs.ops('fsyncDir', /\/new$/).find((d) => rename !== undefined && d.seq > rename.end!);
  t.ok(fileSync && rename && dirSync, 'file fsync, rename and fsync of new/ all happened');
  t.ok(fileSync!.end! < rename!.seq, 'file fsync done before the rename');
  t.ok(rename!.end! < dirSync!.seq, 'rename done before the fsync of new/');
  t.ok(dirSync!.end! < ack.seq, 'fsync of new/ done before the 250');
  await c.quit();
  await other.quit();
});

t.test('POP3 QUIT: journal fsync < links/unlinks < folder fsyncs < journal removed < +OK', async (t) => {
  for (const mode of ['trash', 'expunge'] as const) {
    await t.test(mode, async (t) => {
      const fs = new FsRecorder();
      const h = await startPop3(t, {
        kind: 'maildir',
        maildir: { fs, deletionMode: mode },
        mail: { alice: ['Subject: one\n\n1\n', 'Subject: two\n\n2\n'] },
      });
      const root = h.root ?? '';
      const userDir = join(root, 'alice');
      const client = await h.login('alice', 'secret');
      await client.command('DELE 1', /^\+OK/);
      fs.reset();
      // The user folder's fsync after the journal is removed is the last step before +OK.
      const hold = gate();
      const lastSync = new RegExp(`^${escape(userDir)}$`);
      fs.fail({ op: 'fsyncDir', path: lastSync, wait: hold.promise, skip: 1, times: 1 });
      let answered = false;
      client.socket.on('data', () => (answered = true));
      client.send('QUIT');
      await until(() => fs.ops('fsyncDir').filter((c) => lastSync.test(c.path)).length === 2, 'the last fsync of the user folder starts');
      const other = await h.login('bob', 'hunter2');
      await other.command('NOOP', /^\+OK/);
      t.notOk(answered, 'the QUIT answer has not gone out while the fsync is held');
      hold.open();
      const reply = await client.expect(/^\+OK/);
      const ack = fs.mark('+OK');
      t.match(reply, /^\+OK/);
      const journal = join(userDir, 'maildird-batch.journal');
      const journalSync = fs.ops('fsync', journal)[0];
      const moves = [...fs.ops('link'), ...fs.ops('unlink')].filter((c) => c.path !== journal && !c.path.includes('maildird.lock'));
      const folderSyncs = fs.ops('fsyncDir').filter((c) => c.path.startsWith(userDir));
      const journalGone = fs.ops('unlink', journal)[0];
      t.ok(journalSync && moves.length > 0 && journalGone, 'journal fsynced, message moved, journal removed');
      t.ok(moves.every((m) => journalSync!.end! < m.seq), 'journal fsynced before any file moved');
      const touched = mode === 'trash' ? [join(userDir, '.Trash', 'cur'), join(userDir, 'new')] : [join(userDir, 'new')];
      for (const dir of touched) {
        const sync = folderSyncs.find((s) => s.path === dir && moves.every((m) => m.end! < s.seq));
        t.ok(sync && sync.end! < journalGone!.seq, `${dir.slice(root.length)} fsynced after the moves and before the journal goes`);
      }
      const last = folderSyncs.filter((s) => s.path === userDir).at(-1);
      t.ok(last && journalGone!.end! < last.seq && last.end! < ack.seq, 'user folder fsynced after the journal is gone, before +OK');
      t.ok(folderSyncs.every((s) => s.end! < ack.seq), 'every folder fsync done before +OK');
    });
  }
});

t.test('maildird deliver (deliverLocal): file fsync < rename < fsync of new/ < success', async (t) => {
  const root = t.testdir({});
  const fs = new FsRecorder();
  const store = await MaildirStore.open({ root, fs });
  t.teardown(() => store.close());
  const users = UserDatabase.fromEntries([{ name: 'alice', password: '{PLAIN}a' }], { localDomains: [DOMAIN] });
  const hold = gate();
  fs.fail({ op: 'fsyncDir', path: /\/new$/, wait: hold.promise, times: 1 });
  let settled = false;
  const running = deliverLocal({
    store,
    users,
    recipients: ['alice'],
    input: Readable.from([Buffer.from('Subject: mda\n\nbody\n')]),
    localDomains: [DOMAIN],
    hostname: 'host.example.org',
  }).finally(() => (settled = true));
  await until(() => inFlight(fs.ops('fsyncDir', /\/new$/)), 'the fsync of new/ starts');
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
  t.notOk(settled, 'no result while the fsync of new/ is held');
  hold.open();
  const result = await running;
  const ack = fs.mark('exit 0');
  t.equal(result.exitCode, 0);
  const rename = fs.ops('rename').find((r) => /\/tmp\//.test(r.path));
  const fileSync = fs.ops('fsync', /\/tmp\//)[0];
  const dirSync = fs.ops('fsyncDir', /\/new$/).find((d) => rename !== undefined && d.seq > rename.end!);
  t.ok(fileSync && rename && dirSync);
  t.ok(fileSync!.end! < rename!.seq && rename!.end! < dirSync!.seq && dirSync!.end! < ack.seq, 'fsync < rename < fsync of new/ < result');
});
