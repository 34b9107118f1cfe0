import t from 'tap';
import * as path from 'node:path';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, utimesSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { checkTree } from '../../../src/storage/maildir/check.js';
import { MaildirStore } from '../../../src/storage/maildir/maildir-store.js';
import { makeMaildir, writeFiles } from '../../helpers/maildir-tree.js';
import { rejectsKind } from '../../helpers/maildir-assert.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3600;

t.test('a healthy tree: users, counts, bytes, nothing to report', async (t) => {
  const root = t.testdir();
  makeMaildir(path.join(root, 'alice'), {
    cur: { '1700000000.M1P1Q1.h,S=5,W=6:2,S': 'abcd\n' },
    new: { '1700000001.M1P1Q1.h': 'xy\n', '.keep': '' },
  });
  writeFiles(path.join(root, 'alice', '.Trash', 'cur'), { '1600000000.M1P1Q1.h:2,S': '123456789\n' });
  writeFiles(path.join(root, 'erin'), { 'welcome.eml': 'hello\n', '.keep': '', 'notes.txt': 'ignored' });
  writeFiles(path.join(root, 'erin', '.Trash'), { 'old.eml': 'bye\n' });
  makeMaildir(path.join(root, 'empty'));
  writeFileSync(path.join(root, 'README'), 'not a user');
  const report = await checkTree({ root, now: NOW });
  t.same(report.users, [
    { folder: 'alice', form: 'maildir', messages: 2, newMessages: 1, bytes: 8, trashMessages: 1, trashBytes: 10 },
    { folder: 'empty', form: 'maildir', messages: 0, newMessages: 0, bytes: 0, trashMessages: 0, trashBytes: 0 },
    { folder: 'erin', form: 'flat', messages: 1, newMessages: 0, bytes: 6, trashMessages: 1, trashBytes: 4 },
  ]);
  t.same(report.totals, { users: 3, messages: 3, bytes: 14 });
  t.same(report.issues, []);
});

t.test('problems are reported, each once', async (t) => {
  const base = t.testdir({ outside: { cur: {} } });
  const root = path.join(base, 'root');
  const bob = makeMaildir(path.join(root, 'bob'), {
    cur: {
      '1700000000.M1P1Q1.dup:2,S': 'a\n',
      '1700000001.M1P1Q1.twice:2,S': 'b\n',
      '1700000001.M1P1Q1.twice:2,RS': 'b\n',
      ':2,S': 'no base',
    },
    new: { '1700000000.M1P1Q1.dup': 'a\n' },
    tmp: {
      'stale-delivery': { content: 'x', mtime: NOW / 1000 - 37 * HOUR },
      'fresh-delivery': { content: 'x', mtime: NOW / 1000 - HOUR },
    },
  });
  mkdirSync(path.join(bob, 'cur', '1700000002.M1P1Q1.folder'));
  symlinkSync('/etc/passwd', path.join(bob, 'cur', '1700000003.M1P1Q1.link:2,S'));
  writeFileSync(path.join(bob, 'maildird-batch.journal'), '{}\n');
  writeFiles(path.join(root, 'flat'), {
    'ok.eml': 'x\n',
    '.1700000000.M1P1Q1.h.tmp': { content: 'x', mtime: NOW / 1000 - 40 * HOUR },
  });
  symlinkSync(path.join(base, 'outside'), path.join(root, 'evil'));
  const report = await checkTree({ root, now: NOW });
  t.same(
    report.users.map((u) => [u.folder, u.messages]),
    [
      ['bob', 4],
      ['flat', 1],
    ],
  );
  const byKind = (kind: string) => report.issues.filter((i) => i.kind === kind);
  t.same(
    byKind('duplicate-base').map((i) => ('paths' in i ? i.paths : [])),
    [
      ['bob/cur/1700000000.M1P1Q1.dup:2,S', 'bob/new/1700000000.M1P1Q1.dup'],
      ['bob/cur/1700000001.M1P1Q1.twice:2,RS', 'bob/cur/1700000001.M1P1Q1.twice:2,S'],
    ],
  );
  t.same(
    byKind('unparsable')
      .map((i) => ('reason' in i ? `${i.path} ${i.reason}` : ''))
      .sort(),
    [
      'bob/cur/1700000002.M1P1Q1.folder a folder',
      'bob/cur/1700000003.M1P1Q1.link:2,S a symbolic link',
      'bob/cur/:2,S not a message file name',
    ],
  );
  t.same(
    byKind('stale-tmp').map((i) => ('path' in i ? i.path : '')),
    ['bob/tmp/stale-delivery', 'flat/.1700000000.M1P1Q1.h.tmp'],
  );
  t.same(byKind('journal'), [{ kind: 'journal', path: 'bob/maildird-batch.journal' }]);
  t.match(byKind('folder'), [{ path: 'evil', reason: /outside the root/ }]);
});

t.test('locks: live, stale by age, stale by a dead owner', async (t) => {
  const root = t.testdir();
  const store = await MaildirStore.open({ root });
  const live = await store.openMaildrop({ name: 'live' });
  t.teardown(() => live.release());
  // A lock left by a process of this host that has exited.
  const child = spawn(process.execPath, ['-e', 'process.exit(0)']);
  const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid ?? 0)));
  const deadDrop = await store.openMaildrop({ name: 'dead' });
  await deadDrop.release();
  const lockOf = (user: string) => path.join(root, user, 'maildird.lock');
  const liveLock = JSON.parse(readFileSync(lockOf('live'), 'utf8')) as Record<string, unknown>;
  writeFileSync(lockOf('dead'), JSON.stringify({ ...liveLock, pid: deadPid, token: 'x' }));
  makeMaildir(path.join(root, 'old'));
  writeFileSync(lockOf('old'), JSON.stringify({ ...liveLock, host: 'elsewhere', token: 'y' }));
  utimesSync(lockOf('old'), Date.now() / 1000 - 600, Date.now() / 1000 - 600);
  const report = await checkTree({ root });
  const locks = report.issues.flatMap((i) => (i.kind === 'lock' ? [[i.path, i.state]] : []));
  t.same(locks, [
    ['dead/maildird.lock', 'stale'],
    ['live/maildird.lock', 'live'],
    ['old/maildird.lock', 'stale'],
  ]);
  await store.close();
});

t.test('layouts: %d/%n and %h', async (t) => {
  const root = t.testdir();
  makeMaildir(path.join(root, 'example.org', 'alice'), { cur: { '1700000000.M1P1Q1.h:2,S': 'a\n' } });
  makeMaildir(path.join(root, 'example.net', 'bob'));
  const byDomain = await checkTree({ root, layout: '%d/%n', now: NOW });
  t.same(
    byDomain.users.map((u) => [u.folder, u.messages]),
    [
      ['example.net/bob', 0],
      ['example.org/alice', 1],
    ],
  );
  const homes = t.testdir();
  makeMaildir(path.join(homes, 'home', 'carol', 'Maildir'), { new: { '1700000000.M1P1Q1.h': 'c\n' } });
  const byHome = await checkTree({ root: homes, layout: '%h/Maildir', now: NOW });
  t.same(
    byHome.users.map((u) => [u.folder, u.messages]),
    [['home/carol/Maildir', 1]],
  );
});

t.test('a missing root is an error', async (t) => {
  await rejectsKind(t, checkTree({ root: path.join(t.testdir(), 'nope') }), 'not-found');
});
