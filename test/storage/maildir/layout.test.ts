import t, { type Test } from 'tap';
import * as path from 'node:path';
import { symlinkSync, realpathSync } from 'node:fs';
import {
  resolveUserDir,
  ensureInsideRoot,
  detectForm,
  maildirPaths,
  isStrictlyInside,
} from '../../../src/storage/maildir/layout.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { rejectsKind, throwsKind } from '../../helpers/maildir-assert.js';

const root = '/srv/mail';
const invalidName = (t: Test, fn: () => unknown, what: string) => throwsKind(t, fn, 'invalid-name', what);

t.test('layout variables', async (t) => {
  t.equal(resolveUserDir(root, '%u', { name: 'alice' }), '/srv/mail/alice');
  t.equal(resolveUserDir(root, '%u', { name: 'alice@example.org' }), '/srv/mail/alice@example.org');
  t.equal(resolveUserDir(root, '%d/%n', { name: 'alice@example.org' }), '/srv/mail/example.org/alice');
  t.equal(resolveUserDir(root, '%d/%n', { name: 'bob' }, 'example.net'), '/srv/mail/example.net/bob');
  t.equal(resolveUserDir(root, '%d/%n/Maildir', { name: 'a@b@c.org' }), '/srv/mail/c.org/a@b/Maildir', 'last @');
  t.equal(resolveUserDir(root, '%h/Maildir', { name: 'x', home: 'homes/x' }), '/srv/mail/homes/x/Maildir');
  t.equal(resolveUserDir(root, '%h', { name: 'x', home: '/srv/mail/x' }), '/srv/mail/x', 'absolute home inside root');
  t.equal(resolveUserDir(root, '%h/Maildir', { name: 'x', home: '/srv/mail/x/' }), '/srv/mail/x/Maildir');
  t.equal(resolveUserDir(root, 'u-%u-100%%', { name: 'x' }), '/srv/mail/u-x-100%');
  t.equal(resolveUserDir('relative/root', '%u', { name: 'x' }), path.resolve('relative/root/x'));
});

t.test('names that could escape are refused', async (t) => {
  const bad = ['..', '.', '', 'a/b', '../x', 'a\\b', 'a\0b', 'a\nb', 'a\rb', 'tab\t', '\x7f', '/etc'];
  for (const name of bad) invalidName(t, () => resolveUserDir(root, '%u', { name }), JSON.stringify(name));
  invalidName(t, () => resolveUserDir(root, '%d/%n', { name: 'bob' }), 'no domain');
  invalidName(t, () => resolveUserDir(root, '%d/%n', { name: 'bob@..' }), 'domain ..');
  invalidName(t, () => resolveUserDir(root, '%d/%n', { name: '@example.org' }), 'empty local part');
  invalidName(t, () => resolveUserDir(root, '%h', { name: 'x', home: '/etc' }), 'absolute home outside');
  invalidName(t, () => resolveUserDir(root, '%h', { name: 'x', home: '/srv/mailx' }), 'sibling prefix');
  invalidName(t, () => resolveUserDir(root, '%h', { name: 'x', home: '/srv/mail' }), 'home equal to root');
  invalidName(t, () => resolveUserDir(root, '%h', { name: 'x', home: '/srv/mail/../etc' }), '.. in home');
  invalidName(t, () => resolveUserDir(root, '%h', { name: 'x', home: 'a/../../b' }), '.. in relative home');
  invalidName(t, () => resolveUserDir(root, '%h', { name: 'x' }), 'no home');
  invalidName(t, () => resolveUserDir(root, 'x/%h', { name: 'x', home: '/srv/mail/y' }), 'absolute home mid-template');
  invalidName(t, () => resolveUserDir(root, '%x', { name: 'x' }), 'unknown variable');
  invalidName(t, () => resolveUserDir(root, '', { name: 'x' }), 'empty template');
  invalidName(t, () => resolveUserDir(root, '../%u', { name: 'x' }), 'template escaping');
});

t.test('isStrictlyInside', async (t) => {
  t.ok(isStrictlyInside('/a', '/a/b'));
  t.notOk(isStrictlyInside('/a', '/a'));
  t.notOk(isStrictlyInside('/a', '/ab'));
  t.notOk(isStrictlyInside('/a', '/'));
  t.ok(isStrictlyInside('/a', '/a/..b'));
});

t.test('ensureInsideRoot follows symlinks', async (t) => {
  const base = realpathSync(t.testdir({ root: { alice: {}, nested: { deep: {} } }, outside: { x: {} } }));
  const r = path.join(base, 'root');
  symlinkSync(path.join(base, 'outside'), path.join(r, 'evil'));
  symlinkSync(path.join(r, 'alice'), path.join(r, 'alias'));
  symlinkSync(path.join(base, 'nowhere'), path.join(r, 'dangling'));
  symlinkSync(r, path.join(r, 'self'));
  await ensureInsideRoot(nodeFs, r, path.join(r, 'alice'));
  await ensureInsideRoot(nodeFs, r, path.join(r, 'alias'));
  await ensureInsideRoot(nodeFs, r, path.join(r, 'newuser'));
  await ensureInsideRoot(nodeFs, r, path.join(r, 'nested', 'deep', 'missing', 'more'));
  const refused = async (dir: string, what: string) =>
    rejectsKind(t, ensureInsideRoot(nodeFs, r, dir), 'invalid-name', what);
  await refused(path.join(r, 'evil'), 'symlink out of the root');
  await refused(path.join(r, 'evil', 'x'), 'through a symlinked ancestor');
  await refused(path.join(r, 'evil', 'missing'), 'missing below a symlinked ancestor');
  await refused(path.join(r, 'dangling'), 'dangling symlink');
  await refused(path.join(r, 'self'), 'symlink to the root itself');
  await refused(path.join(base, 'outside'), 'plain path outside');
  await rejectsKind(t, ensureInsideRoot(nodeFs, path.join(base, 'nope'), path.join(base, 'nope', 'a')), 'not-found');
});

t.test('detectForm', async (t) => {
  const base = t.testdir({
    md1: { cur: {} },
    md2: { new: {} },
    md3: { tmp: {} },
    flat: { 'a.eml': 'x' },
    empty: {},
    file: 'not a folder',
    curfile: { cur: 'a file named cur' },
  });
  t.equal(await detectForm(nodeFs, path.join(base, 'md1')), 'maildir');
  t.equal(await detectForm(nodeFs, path.join(base, 'md2')), 'maildir');
  t.equal(await detectForm(nodeFs, path.join(base, 'md3')), 'maildir');
  t.equal(await detectForm(nodeFs, path.join(base, 'flat')), 'flat');
  t.equal(await detectForm(nodeFs, path.join(base, 'empty')), 'flat');
  t.equal(await detectForm(nodeFs, path.join(base, 'curfile')), 'flat');
  t.equal(await detectForm(nodeFs, path.join(base, 'missing')), 'missing');
  await rejectsKind(t, detectForm(nodeFs, path.join(base, 'file')), 'permanent');
});

t.test('maildirPaths', async (t) => {
  const p = maildirPaths('/srv/mail/alice');
  t.same(p, {
    dir: '/srv/mail/alice',
    cur: '/srv/mail/alice/cur',
    new: '/srv/mail/alice/new',
    tmp: '/srv/mail/alice/tmp',
    trashDir: '/srv/mail/alice/.Trash',
    trashCur: '/srv/mail/alice/.Trash/cur',
    trashNew: '/srv/mail/alice/.Trash/new',
    trashTmp: '/srv/mail/alice/.Trash/tmp',
    lockFile: '/srv/mail/alice/maildird.lock',
    journalFile: '/srv/mail/alice/maildird-batch.journal',
    maildirsize: '/srv/mail/alice/maildirsize',
    listingCache: '/srv/mail/alice/maildird-listing.cache',
    dovecotUidlist: '/srv/mail/alice/dovecot-uidlist',
  });
});
