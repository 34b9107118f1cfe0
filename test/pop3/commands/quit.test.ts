import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FsRecorder } from '../../helpers/fs-recorder.ts';
import { messages, startPop3, STORE_KINDS } from '../../helpers/pop3-harness.ts';

for (const kind of STORE_KINDS) {
  t.test(`${kind}: QUIT in AUTHORIZATION and in TRANSACTION without changes`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(1) } });
    const { client } = await h.connect();
    await client.command('QUIT now', '-ERR This command takes no arguments');
    await client.command('QUIT', '+OK maildird POP3 server signing off');
    t.equal(await client.closed(), '');
    const logged = await h.login();
    const ended = h.sessionEnd();
    await logged.command('QUIT', '+OK maildird POP3 server signing off');
    t.equal(await logged.closed(), '');
    t.match(await ended, { reason: 'quit', deleted: 0, user: 'alice' });
  });
}

t.test('maildir: DELE + QUIT moves to Trash (UIDL kept); RETR marks the rest Seen', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(3) } });
  const client = await h.login();
  client.send('UIDL');
  await client.expect(/^\+OK/);
  const uidls = (await client.lines()).map((l) => l.split(' ')[1] as string);
  client.send('RETR 2');
  await client.expect(/^\+OK/);
  await client.body();
  client.send('RETR 1');
  await client.expect(/^\+OK/);
  await client.body();
  await client.command('DELE 1', /^\+OK/);
  await client.command('QUIT', /^\+OK .*\(1 message deleted\)$/);
  await client.closed();
  const user = join(h.root as string, 'alice');
  const trash = readdirSync(join(user, '.Trash', 'cur'));
  t.equal(trash.length, 1);
  t.ok(trash[0]?.startsWith(uidls[0] as string), 'the base name (UIDL) is kept in Trash');
  const cur = readdirSync(join(user, 'cur'));
  t.same(cur.length, 1);
  t.match(cur[0], new RegExp(`^${(uidls[1] as string).replace(/[.]/g, '\\.')}.*:2,S$`), 'the retrieved message is Seen');
  t.same(readdirSync(join(user, 'new')).length, 1, 'the unread one stays in new/');
  t.notOk(existsSync(join(user, 'maildird.lock')), 'lock released');
});

t.test('maildir: a failed UPDATE answers -ERR [SYS/TEMP] and deletes nothing', async (t) => {
  const fs = new FsRecorder();
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(2) }, maildir: { fs } });
  const client = await h.login();
  await client.command('DELE 1', /^\+OK/);
  await client.command('DELE 2', /^\+OK/);
  fs.fail({ op: 'link', path: /\.Trash/, code: 'EIO', skip: 1 });
  const ended = h.sessionEnd();
  await client.command('QUIT', '-ERR [SYS/TEMP] deleted messages not removed');
  await client.closed();
  t.match(await ended, { reason: 'quit', deleted: 0 });
  fs.clearFaults();
  const again = await h.login();
  await again.command('STAT', '+OK 2 82');
  t.notOk(h.events.some((e) => e.name === 'delete'));
});

t.test('maildir, deletion mode expunge: DELE + QUIT unlinks, no Trash', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(2) }, maildir: { deletionMode: 'expunge' } });
  const client = await h.login();
  await client.command('DELE 2', /^\+OK/);
  await client.command('QUIT', /^\+OK .*\(1 message deleted\)$/);
  await client.closed();
  const user = join(h.root as string, 'alice');
  t.equal(readdirSync(join(user, 'new')).length, 1);
  t.notOk(existsSync(join(user, '.Trash', 'cur')) && readdirSync(join(user, '.Trash', 'cur')).length > 0, 'nothing in Trash');
});
