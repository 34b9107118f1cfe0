import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync, linkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  applyBatch,
  planBatch,
  recoverJournal,
  type BatchMessage,
} from '../../../src/storage/maildir/journal.js';
import { maildirPaths, type MaildirPaths } from '../../../src/storage/maildir/layout.js';
import { parseMaildirName } from '../../../src/storage/maildir/filename.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { StorageError } from '../../../src/errors.js';
import { FsRecorder, gate } from '../../helpers/fs-recorder.js';
import { rejectsKind, throwsKind } from '../../helpers/maildir-assert.js';
import { captureLogger } from '../../helpers/lock-journal-support.js';
import { buildTree, census, type TreeMessage } from '../../helpers/journal-tree.js';

function setup(t: Test, form: 'maildir' | 'flat' = 'maildir', count = 8): { paths: MaildirPaths; msgs: TreeMessage[] } {
  const paths = maildirPaths(join(t.testdir({}), 'user'));
  return { paths, msgs: buildTree(paths, form, count) };
}

const at = (msgs: TreeMessage[], ...idx: number[]): TreeMessage[] => idx.map((i) => msgs[i]!);

/** Where each base is, as `where/name`. */
function whereIs(paths: MaildirPaths, form: 'maildir' | 'flat', msgs: TreeMessage[]): string[] {
  const c = census(paths, form);
  return msgs.map((m) => (c.get(m.base) ?? []).map((p) => `${p.where}/${p.name}`).join(' + ') || 'gone');
}

/** Every message in exactly one place with its body intact. */
function assertIntact(t: Test, paths: MaildirPaths, form: 'maildir' | 'flat', msgs: TreeMessage[], gone: Set<string> = new Set()) {
  const c = census(paths, form);
  for (const m of msgs) {
    const places = c.get(m.base) ?? [];
    if (gone.has(m.base)) {
      t.equal(places.length, 0, `${m.base} is gone`);
      continue;
    }
    t.equal(places.length, 1, `${m.base} is in exactly one place`, { places });
    t.equal(places[0]?.body, m.body, 'body intact');
  }
  t.notOk(existsSync(paths.journalFile), 'no journal left');
  t.notOk(existsSync(`${paths.journalFile}.next`), 'no journal scratch left');
}

t.test('planBatch', async (t) => {
  const { paths, msgs } = setup(t);
  // msgs: even in new/ (no info), odd in cur/.
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1), seen: at(msgs, 0, 2, 3, 2) }, 'trash');
  t.same(
    plan.steps.map((s) => [s.kind, s.from, 'to' in s ? s.to : null]),
    [
      ['seen', msgs[2]!.path, join(paths.cur, `${msgs[2]!.base}:2,S`)],
      ['trash', msgs[0]!.path, join(paths.trashCur, `${msgs[0]!.base}:2,`)],
      ['trash', msgs[1]!.path, join(paths.trashCur, readdirSync(paths.cur).find((n) => n.startsWith(msgs[1]!.base))!)],
    ],
    'Seen only for new/ messages not deleted (each once), then deletions; cur/ names keep their info',
  );
  const expunge = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 0, 1), seen: [] }, 'expunge');
  t.same(expunge.steps, [
    { kind: 'expunge', from: msgs[0]!.path },
    { kind: 'expunge', from: msgs[1]!.path },
  ]);
  const semi = planBatch(paths, 'maildir', { deleted: at(msgs, 0), seen: at(msgs, 2) }, 'trash', ';');
  t.same(
    semi.steps.map((s) => ('to' in s ? s.to : null)),
    [join(paths.cur, `${msgs[2]!.base};2,S`), join(paths.trashCur, `${msgs[0]!.base};2,`)],
    'the configured separator',
  );

  const flat = setup(t, 'flat', 3);
  const flatPlan = planBatch(flat.paths, 'flat', { deleted: at(flat.msgs, 1), seen: at(flat.msgs, 0) }, 'trash');
  t.same(flatPlan.steps, [{ kind: 'trash', from: flat.msgs[1]!.path, to: join(flat.paths.trashDir, `${flat.msgs[1]!.base}.eml`) }], 'no Seen step in a flat folder');

  const outside: BatchMessage = { path: join(paths.dir, '..', 'other', 'cur', 'x'), location: 'cur' };
  throwsKind(t, () => planBatch(paths, 'maildir', { deleted: [outside], seen: [] }, 'trash'), 'invalid-name');
  const wrongDir: BatchMessage = { path: msgs[0]!.path, location: 'cur' };
  throwsKind(t, () => planBatch(paths, 'maildir', { deleted: [wrongDir], seen: [] }, 'trash'), 'invalid-name', 'location must match');
});

t.test('trash mode: deleted messages go to .Trash/cur keeping their base name, retrieved ones are marked Seen', async (t) => {
  const { paths, msgs } = setup(t);
  const inodes = msgs.map((m) => statSync(m.path).ino);
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1, 5), seen: at(msgs, 2, 4, 3) }, 'trash');
  const result = await applyBatch(nodeFs, paths, plan);
  t.same(result, { deleted: 3, seen: 2, pending: 0 });
  t.same(whereIs(paths, 'maildir', msgs), [
    `trash-cur/${msgs[0]!.base}:2,`,
    `trash-cur/${msgs[1]!.base}:2,S`,
    `cur/${msgs[2]!.base}:2,S`,
    `cur/${msgs[3]!.base}:2,`,
    `cur/${msgs[4]!.base}:2,S`,
    `trash-cur/${msgs[5]!.base}:2,S`,
    `new/${msgs[6]!.base}`,
    `cur/${msgs[7]!.base}:2,`,
  ]);
  assertIntact(t, paths, 'maildir', msgs);
  t.equal(statSync(join(paths.trashCur, `${msgs[0]!.base}:2,`)).ino, inodes[0], 'the same file (link, not copy)');
  for (const d of [paths.trashDir, paths.trashCur, paths.trashNew, paths.trashTmp]) {
    t.equal(statSync(d).mode & 0o777, 0o700, `${d} made 0700`);
  }
});

t.test('expunge mode unlinks, and still marks Seen', async (t) => {
  const { paths, msgs } = setup(t);
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 3), seen: at(msgs, 2, 6) }, 'expunge');
  t.same(await applyBatch(nodeFs, paths, plan), { deleted: 2, seen: 2, pending: 0 });
  assertIntact(t, paths, 'maildir', msgs, new Set([msgs[0]!.base, msgs[3]!.base]));
  t.same(whereIs(paths, 'maildir', at(msgs, 2, 6)), [`cur/${msgs[2]!.base}:2,S`, `cur/${msgs[6]!.base}:2,S`]);
  t.notOk(existsSync(paths.trashDir), 'no Trash made for an expunge');
});

t.test('flat folders: Trash is the flat folder .Trash/', async (t) => {
  const { paths, msgs } = setup(t, 'flat', 4);
  const plan = planBatch(paths, 'flat', { deleted: at(msgs, 1, 2), seen: at(msgs, 0) }, 'trash');
  t.same(await applyBatch(nodeFs, paths, plan), { deleted: 2, seen: 0, pending: 0 });
  t.same(whereIs(paths, 'flat', msgs), [
    `flat/${msgs[0]!.base}.eml`,
    `trash-flat/${msgs[1]!.base}.eml`,
    `trash-flat/${msgs[2]!.base}.eml`,
    `flat/${msgs[3]!.base}.eml`,
  ]);
  t.notOk(existsSync(paths.trashCur), 'no cur/ in a flat Trash');
  const again = planBatch(paths, 'flat', { deleted: at(msgs, 3), seen: [] }, 'expunge');
  t.same(await applyBatch(nodeFs, paths, again), { deleted: 1, seen: 0, pending: 0 });
  assertIntact(t, paths, 'flat', msgs, new Set([msgs[3]!.base]));
});

t.test('a base name already in Trash gets -<n> before its size fields', async (t) => {
  const { paths, msgs } = setup(t);
  mkdirSync(paths.trashCur, { recursive: true });
  mkdirSync(paths.trashNew, { recursive: true });
  mkdirSync(paths.trashTmp, { recursive: true });
  const [u0, f0] = splitBase(msgs[0]!.base);
  const [u1, f1] = splitBase(msgs[1]!.base);
  // msgs[0]'s base is taken (with other flags) and so is its -2; msgs[1]'s base sits in .Trash/new.
  writeFileSync(join(paths.trashCur, `${msgs[0]!.base}:2,ST`), 'older copy');
  writeFileSync(join(paths.trashCur, `${u0}-2${f0}:2,S`), 'older copy 2');
  writeFileSync(join(paths.trashNew, msgs[1]!.base), 'older copy');
  // A broken tree: msgs[2]'s base also in cur/ (deleted both).
  const twin = join(paths.cur, `${msgs[2]!.base}:2,S`);
  writeFileSync(twin, msgs[2]!.body);
  const twinMsg: BatchMessage = { path: twin, location: 'cur' };

  const plan = planBatch(paths, 'maildir', { deleted: [...at(msgs, 0, 1, 2), twinMsg, msgs[4]!], seen: [] }, 'trash');
  await applyBatch(nodeFs, paths, plan);
  const trash = readdirSync(paths.trashCur).sort();
  const [u2, f2] = splitBase(msgs[2]!.base);
  t.ok(trash.includes(`${u0}-3${f0}:2,`), 'smallest free suffix', { trash });
  t.ok(trash.includes(`${u1}-2${f1}:2,S`), 'a clash with .Trash/new counts');
  t.ok(trash.includes(`${msgs[2]!.base}:2,`) && trash.includes(`${u2}-2${f2}:2,S`), 'two of one batch do not clash');
  t.ok(trash.includes(`${msgs[4]!.base}:2,`), 'no clash: the base name is kept');
  const renamed = parseMaildirName(`${u0}-3${f0}:2,`);
  t.equal(renamed?.size, Buffer.byteLength(msgs[0]!.body), 'S= still readable');
  t.ok(renamed?.wireSize !== undefined, 'W= still readable');
  t.equal(readFileSync(join(paths.trashCur, `${msgs[0]!.base}:2,ST`), 'utf8'), 'older copy', 'nothing overwritten');
  t.equal(readFileSync(join(paths.trashNew, msgs[1]!.base), 'utf8'), 'older copy');

  const flat = setup(t, 'flat', 2);
  mkdirSync(flat.paths.trashDir);
  writeFileSync(join(flat.paths.trashDir, `${flat.msgs[0]!.base}.eml`), 'older');
  await applyBatch(nodeFs, flat.paths, planBatch(flat.paths, 'flat', { deleted: flat.msgs, seen: [] }, 'trash'));
  const [fu, ff] = splitBase(flat.msgs[0]!.base);
  t.same(
    readdirSync(flat.paths.trashDir).sort(),
    [`${fu}-2${ff}.eml`, `${flat.msgs[0]!.base}.eml`, `${flat.msgs[1]!.base}.eml`].sort(),
  );
});

function splitBase(base: string): [string, string] {
  const comma = base.indexOf(',');
  return comma < 0 ? [base, ''] : [base.slice(0, comma), base.slice(comma)];
}

t.test('the journal is written and fsynced before the first move; directories are fsynced before it is removed', async (t) => {
  const { paths, msgs } = setup(t, 'maildir', 10);
  const fs = new FsRecorder();
  const hold = gate();
  fs.fail({ op: 'link', wait: hold.promise, times: 1 });
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1, 3), seen: at(msgs, 2, 4) }, 'trash');
  const running = applyBatch(fs, paths, plan);
  // Wait (bounded) until the first link is being held, then read the journal as a crash would find it.
  for (let i = 0; i < 2000 && fs.ops('link').length === 0; i++) await delay(5);
  const lines = readFileSync(paths.journalFile, 'utf8').split('\n');
  t.same(JSON.parse(lines[0]!), { 'maildird-batch': 1, mode: 'trash', entries: 5 });
  t.same(lines.slice(1, -1).map((l) => JSON.parse(l) as unknown), [
    { from: `new/${msgs[2]!.base}`, to: `cur/${msgs[2]!.base}:2,S` },
    { from: `new/${msgs[4]!.base}`, to: `cur/${msgs[4]!.base}:2,S` },
    { from: `new/${msgs[0]!.base}`, to: `.Trash/cur/${msgs[0]!.base}:2,` },
    { from: `cur/${msgs[1]!.base}:2,S`, to: `.Trash/cur/${msgs[1]!.base}:2,S` },
    { from: `cur/${msgs[3]!.base}:2,`, to: `.Trash/cur/${msgs[3]!.base}:2,` },
  ], 'one JSON line per step, paths relative to the user folder');
  t.equal(lines.at(-1), '', 'ends with a line end');
  t.equal(statSync(paths.journalFile).mode & 0o777, 0o600);
  hold.open();
  await running;

  const seqOf = (op: Parameters<FsRecorder['ops']>[0], path?: string | RegExp) => fs.ops(op, path).map((c) => c.seq);
  const journalOpen = seqOf('open', paths.journalFile)[0]!;
  const journalWrite = seqOf('write', paths.journalFile)[0]!;
  const journalSync = seqOf('fsync', paths.journalFile)[0]!;
  const dirSyncs = fs.ops('fsyncDir', paths.dir).filter((c) => c.path === paths.dir).map((c) => c.seq);
  const links = seqOf('link');
  const unlinks = fs.ops('unlink').filter((c) => c.path !== paths.journalFile).map((c) => c.seq);
  const journalUnlink = seqOf('unlink', paths.journalFile)[0]!;
  t.ok(journalOpen < journalWrite && journalWrite < journalSync, 'journal: open, write, fsync');
  const afterJournal = dirSyncs.filter((seq) => seq > journalSync);
  t.ok(afterJournal.length >= 1 && afterJournal[0]! < Math.min(...links), 'user folder fsynced before the first link');
  t.equal(links.length, 5);
  t.equal(unlinks.length, 5);
  t.same(fs.ops('rename'), [], 'no rename of a message');
  for (let i = 0; i < links.length; i++) t.ok(links[i]! < unlinks[i]!, 'link before unlink');
  const touchedSyncs = fs.ops('fsyncDir').filter((c) => [paths.cur, paths.new, paths.trashCur].includes(c.path));
  t.same(touchedSyncs.map((c) => c.path).sort(), [paths.cur, paths.new, paths.trashCur].sort(), 'every touched folder fsynced once');
  t.ok(touchedSyncs.every((c) => c.seq > Math.max(...unlinks) && c.seq < journalUnlink), 'after the last move, before the journal goes');
  t.ok(dirSyncs.at(-1)! > journalUnlink, 'user folder fsynced after the journal is removed');
  t.ok(fs.calls.at(-1)!.seq === dirSyncs.at(-1), 'and that is the last call');
});

t.test('a failure mid-batch undoes the moves already made', async (t) => {
  for (const [what, rule] of [
    ['the 4th link fails', { op: 'link', code: 'EIO', skip: 3, times: 1 }],
    ['the 3rd unlink fails', { op: 'unlink', code: 'EIO', skip: 2, times: 1 }],
    ['the Trash folder fsync fails', { op: 'fsyncDir', path: /\.Trash\/cur$/, code: 'EIO', times: 1 }],
  ] as const) {
    await t.test(what, async (t) => {
      const { paths, msgs } = setup(t, 'maildir', 10);
      const before = whereIs(paths, 'maildir', msgs);
      const fs = new FsRecorder();
      fs.fail(rule);
      const log = captureLogger();
      const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1, 3, 5), seen: at(msgs, 2, 4) }, 'trash');
      await rejectsKind(t, applyBatch(fs, paths, plan, { logger: log.logger }), 'temporary');
      t.same(whereIs(paths, 'maildir', msgs), before, 'every message back where it was');
      assertIntact(t, paths, 'maildir', msgs);
      t.same(readdirSync(paths.trashCur), [], 'nothing left in Trash');
      t.match(log.at(50).join('\n'), /batch failed: undoing it/);
      t.ok(fs.ops('rename', paths.journalFile).length === 1, 'the undo was journalled');
    });
  }
});

t.test('expunge: before the first unlink a failure is undone; after it the batch is committed', async (t) => {
  await t.test('a Seen move fails', async (t) => {
    const { paths, msgs } = setup(t);
    const before = whereIs(paths, 'maildir', msgs);
    const fs = new FsRecorder();
    fs.fail({ op: 'link', code: 'EIO', skip: 1, times: 1 });
    const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1), seen: at(msgs, 2, 4, 6) }, 'expunge');
    await rejectsKind(t, applyBatch(fs, paths, plan), 'temporary');
    t.same(whereIs(paths, 'maildir', msgs), before);
    assertIntact(t, paths, 'maildir', msgs);
    t.equal(fs.ops('unlink').filter((c) => !c.path.includes('journal') && !c.path.includes('/new/')).length, 0, 'nothing expunged');
  });
  await t.test('the first unlink fails', async (t) => {
    const { paths, msgs } = setup(t);
    const before = whereIs(paths, 'maildir', msgs);
    const fs = new FsRecorder();
    fs.fail({ op: 'unlink', path: msgs[1]!.path, code: 'EIO', times: 1 });
    const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 1, 3), seen: at(msgs, 2) }, 'expunge');
    await rejectsKind(t, applyBatch(fs, paths, plan), 'temporary');
    t.same(whereIs(paths, 'maildir', msgs), before, 'Seen undone, nothing removed');
    assertIntact(t, paths, 'maildir', msgs);
  });
  await t.test('a later unlink fails: the rest is done, the journal finishes it', async (t) => {
    const { paths, msgs } = setup(t);
    const fs = new FsRecorder();
    fs.fail({ op: 'unlink', path: msgs[3]!.path, code: 'EIO', times: 1 });
    const log = captureLogger();
    const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 1, 3, 5), seen: at(msgs, 2) }, 'expunge');
    t.same(await applyBatch(fs, paths, plan, { logger: log.logger }), { deleted: 3, seen: 1, pending: 1 });
    t.ok(existsSync(msgs[3]!.path), 'the failed one is still there');
    t.notOk(existsSync(msgs[5]!.path), 'later ones were still removed');
    t.ok(existsSync(paths.journalFile), 'journal kept');
    const recovered = await recoverJournal(nodeFs, paths, log.logger);
    t.same(recovered, { recovered: 4, mode: 'expunge' });
    assertIntact(t, paths, 'maildir', msgs, new Set([msgs[1]!.base, msgs[3]!.base, msgs[5]!.base]));
  });
});

t.test('NFS: a link or unlink that happened but reported an error is not a failure', async (t) => {
  const { paths, msgs } = setup(t);
  const fs = new FsRecorder();
  fs.fail({ op: 'link', code: 'EIO', afterEffect: true, times: 1 });
  fs.fail({ op: 'unlink', code: 'ENOENT', afterEffect: true, skip: 1, times: 1 });
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1, 3), seen: [] }, 'trash');
  t.same(await applyBatch(fs, paths, plan), { deleted: 3, seen: 0, pending: 0 });
  t.equal(fs.calls.filter((c) => c.injected).length, 2, 'both errors were injected');
  t.same(whereIs(paths, 'maildir', at(msgs, 0, 1, 3)).map((w) => w.split('/')[0]), ['trash-cur', 'trash-cur', 'trash-cur']);
  assertIntact(t, paths, 'maildir', msgs);
});

t.test('a failed undo leaves a reversed journal that recovery finishes', async (t) => {
  const { paths, msgs } = setup(t, 'maildir', 10);
  const before = whereIs(paths, 'maildir', msgs);
  const fs = new FsRecorder();
  fs.fail({ op: 'link', code: 'EIO', skip: 3, times: 1 }); // the batch fails at the 4th move
  fs.fail({ op: 'link', code: 'EIO', skip: 4, times: 1 }); // and the undo at its first link back
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1, 3, 5, 7), seen: [] }, 'trash');
  await rejectsKind(t, applyBatch(fs, paths, plan), 'temporary');
  const header = JSON.parse(readFileSync(paths.journalFile, 'utf8').split('\n')[0]!) as { mode: string };
  t.equal(header.mode, 'undo', 'the journal now holds the undo');
  await recoverJournal(nodeFs, paths);
  t.same(whereIs(paths, 'maildir', msgs), before, 'recovery completed the undo, not the batch');
  assertIntact(t, paths, 'maildir', msgs);
});

t.test('messages that vanished are skipped; a Seen target that exists is left alone', async (t) => {
  const { paths, msgs } = setup(t);
  const log = captureLogger();
  const plan = planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1), seen: at(msgs, 2) }, 'trash');
  unlinkSync(msgs[1]!.path);
  writeFileSync(join(paths.cur, `${msgs[2]!.base}:2,S`), 'a twin in cur/');
  t.same(await applyBatch(nodeFs, paths, plan, { logger: log.logger }), { deleted: 1, seen: 0, pending: 0 });
  t.ok(existsSync(msgs[2]!.path), 'not moved onto the existing name');
  t.equal(readFileSync(join(paths.cur, `${msgs[2]!.base}:2,S`), 'utf8'), 'a twin in cur/', 'nothing overwritten');
  t.match(log.at(40).join('\n'), /Seen target exists/);
  t.same(await applyBatch(nodeFs, paths, planBatch(paths, 'maildir', { deleted: at(msgs, 1), seen: [] }, 'trash')), {
    deleted: 0,
    seen: 0,
    pending: 0,
  }, 'an empty batch writes no journal');
});

t.test('quota: removed messages are recorded as negative deltas', async (t) => {
  const { paths, msgs } = setup(t);
  writeFileSync(paths.maildirsize, '100000S\n1000 8\n');
  const size = (i: number) => Buffer.byteLength(msgs[i]!.body);
  await applyBatch(nodeFs, paths, planBatch(paths, 'maildir', { deleted: at(msgs, 0, 1), seen: at(msgs, 2) }, 'trash'), {
    quota: {},
  });
  t.equal(readFileSync(paths.maildirsize, 'utf8'), `100000S\n1000 8\n${-(size(0) + size(1))} -2\n`, 'Trash does not count');
  await applyBatch(nodeFs, paths, planBatch(paths, 'maildir', { deleted: at(msgs, 3), seen: [] }, 'trash'), {
    quota: { countTrash: true },
  });
  t.equal(readFileSync(paths.maildirsize, 'utf8').split('\n').length, 4, 'no line when Trash counts');
  await applyBatch(nodeFs, paths, planBatch(paths, 'maildir', { deleted: at(msgs, 5), seen: [] }, 'expunge'), {
    quota: { countTrash: true },
  });
  t.match(readFileSync(paths.maildirsize, 'utf8'), new RegExp(`\\n${-size(5)} -1\\n$`), 'expunge always frees');
});

t.test('recoverJournal', async (t) => {
  await t.test('no journal: nothing to do', async (t) => {
    const { paths } = setup(t);
    t.equal(await recoverJournal(nodeFs, paths), undefined);
  });

  await t.test('rolls every entry forward to exactly one place', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 8);
    mkdirSync(paths.trashCur, { recursive: true });
    const rel = (p: string) => p.slice(paths.dir.length + 1);
    const trashOf = (i: number) => join(paths.trashCur, `${msgs[i]!.base}:2,X`);
    linkSync(msgs[0]!.path, trashOf(0)); // linked, not yet unlinked
    // msgs[1]: not started
    linkSync(msgs[2]!.path, trashOf(2)); // fully moved
    unlinkSync(msgs[2]!.path);
    writeFileSync(trashOf(3), 'someone else'); // target is another file
    unlinkSync(msgs[4]!.path); // gone from both
    // msgs[5]: expunge pending; msgs[6]: expunge done
    unlinkSync(msgs[6]!.path);
    const entries = [
      { from: rel(msgs[0]!.path), to: rel(trashOf(0)) },
      { from: rel(msgs[1]!.path), to: rel(trashOf(1)) },
      { from: rel(msgs[2]!.path), to: rel(trashOf(2)) },
      { from: rel(msgs[3]!.path), to: rel(trashOf(3)) },
      { from: rel(msgs[4]!.path), to: rel(trashOf(4)) },
      { from: rel(msgs[5]!.path), to: null },
      { from: rel(msgs[6]!.path), to: null },
    ];
    writeJournal(paths, 'trash', entries);
    const log = captureLogger();
    const fs = new FsRecorder();
    t.same(await recoverJournal(fs, paths, log.logger), { recovered: 7, mode: 'trash' });
    const places = whereIs(paths, 'maildir', msgs);
    t.equal(places[0], `trash-cur/${msgs[0]!.base}:2,X`, 'linked: the source is unlinked');
    t.equal(places[1], `trash-cur/${msgs[1]!.base}:2,X`, 'not started: moved');
    t.equal(places[2], `trash-cur/${msgs[2]!.base}:2,X`, 'done: left');
    t.equal(places[3], `cur/${msgs[3]!.base}:2, + trash-cur/${msgs[3]!.base}:2,X`, 'another file at the target: the message stays');
    t.equal(readFileSync(trashOf(3), 'utf8'), 'someone else', 'the other file untouched');
    t.equal(places[4], 'gone');
    t.equal(places[5], 'gone', 'expunge finished');
    t.equal(places[6], 'gone');
    t.equal(places[7], `cur/${msgs[7]!.base}:2,`, 'not in the journal: untouched');
    t.match(log.at(50).join('\n'), /in neither place/);
    t.match(log.at(50).join('\n'), /target is another file/);
    t.notOk(existsSync(paths.journalFile));
    const synced = fs.ops('fsyncDir').map((c) => c.path);
    t.ok(synced.includes(paths.cur) && synced.includes(paths.new) && synced.includes(paths.trashCur), 'touched folders fsynced');
    t.ok(fs.ops('unlink', paths.journalFile)[0]!.seq > Math.max(...fs.ops('fsyncDir', paths.trashCur).map((c) => c.seq)), 'before the journal goes');
    t.equal(await recoverJournal(nodeFs, paths), undefined, 'idempotent: nothing left');
  });

  await t.test('a crash during recovery is recovered again', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 6);
    const rel = (p: string) => p.slice(paths.dir.length + 1);
    mkdirSync(paths.trashCur, { recursive: true });
    writeJournal(paths, 'trash', msgs.map((m) => ({ from: rel(m.path), to: `.Trash/cur/${m.base}:2,` })));
    const fs = new FsRecorder();
    fs.fail({ op: 'unlink', code: 'EIO', skip: 2, times: 1 });
    await rejectsKind(t, recoverJournal(fs, paths), 'temporary');
    t.ok(existsSync(paths.journalFile), 'journal kept after a failed recovery');
    t.same(await recoverJournal(nodeFs, paths), { recovered: 6, mode: 'trash' });
    t.same(whereIs(paths, 'maildir', msgs).map((w) => w.split('/')[0]), Array(6).fill('trash-cur'));
    assertIntact(t, paths, 'maildir', msgs);
  });

  await t.test('a Trash removed since the batch began is made again', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 2);
    writeJournal(paths, 'trash', [{ from: `new/${msgs[0]!.base}`, to: `.Trash/cur/${msgs[0]!.base}:2,` }]);
    await recoverJournal(nodeFs, paths);
    t.equal(whereIs(paths, 'maildir', msgs)[0], `trash-cur/${msgs[0]!.base}:2,`);
  });

  await t.test('a torn journal (crash while writing it) is dropped: nothing had moved', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 4);
    const before = whereIs(paths, 'maildir', msgs);
    const full = journalText('trash', msgs.map((m) => ({ from: m.path.slice(paths.dir.length + 1), to: `.Trash/cur/${m.base}:2,` })));
    for (const torn of ['', full.slice(0, 10), full.slice(0, full.length - 5), full.slice(0, full.length - 1), `${full.slice(0, 60)}\0\0\0\0`]) {
      writeFileSync(paths.journalFile, torn);
      const log = captureLogger();
      t.same(await recoverJournal(nodeFs, paths, log.logger), { recovered: 0, mode: 'torn' }, JSON.stringify(torn.slice(-12)));
      t.match(log.at(40).join('\n'), /torn batch journal/);
      t.same(whereIs(paths, 'maildir', msgs), before);
      t.notOk(existsSync(paths.journalFile));
    }
  });

  await t.test('a corrupt journal is kept and refused', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 2);
    const line = JSON.stringify({ from: `new/${msgs[0]!.base}`, to: null });
    for (const bad of [
      `{"maildird-batch":1,"mode":"trash","entries":1}\nnot json\n`,
      `{"maildird-batch":1,"mode":"trash","entries":1}\n${line}\n{"from":"x","to":null}\n`,
      `{"maildird-batch":7,"mode":"trash","entries":1}\n${line}\n`,
      `{"maildird-batch":1,"mode":"sideways","entries":1}\n${line}\n`,
      `{"maildird-batch":1,"mode":"trash","entries":1}\n{"from":3,"to":null}\n`,
    ]) {
      writeFileSync(paths.journalFile, bad);
      await rejectsKind(t, recoverJournal(nodeFs, paths), 'permanent', bad);
      t.ok(existsSync(paths.journalFile), 'kept for the operator');
    }
    t.ok(existsSync(msgs[0]!.path), 'nothing touched');
  });

  await t.test('a journal naming paths outside the folder is refused before anything moves', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 2);
    const victim = join(paths.dir, '..', 'victim');
    writeFileSync(victim, 'not mail');
    for (const entries of [
      [{ from: `new/${msgs[0]!.base}`, to: null }, { from: '../victim', to: null }],
      [{ from: `new/${msgs[0]!.base}`, to: null }, { from: victim, to: null }],
      [{ from: `new/${msgs[0]!.base}`, to: '../stolen' }],
      [{ from: `new/./${msgs[0]!.base}`, to: null }],
    ]) {
      writeJournal(paths, 'expunge', entries);
      await rejectsKind(t, recoverJournal(nodeFs, paths), 'permanent');
    }
    t.ok(existsSync(victim), 'the file outside is untouched');
    t.ok(existsSync(msgs[0]!.path), 'and so is the first entry: refused before anything ran');
  });

  await t.test('applyBatch recovers a leftover journal before writing its own', async (t) => {
    const { paths, msgs } = setup(t, 'maildir', 4);
    writeJournal(paths, 'expunge', [{ from: `new/${msgs[0]!.base}`, to: null }]);
    const log = captureLogger();
    await applyBatch(nodeFs, paths, planBatch(paths, 'maildir', { deleted: at(msgs, 1), seen: [] }, 'expunge'), { logger: log.logger });
    assertIntact(t, paths, 'maildir', msgs, new Set([msgs[0]!.base, msgs[1]!.base]));
    t.match(log.at(40).join('\n'), /leftover batch journal/);
  });
});

function journalText(mode: string, entries: readonly { from: string; to: string | null }[]): string {
  return [JSON.stringify({ 'maildird-batch': 1, mode, entries: entries.length }), ...entries.map((e) => JSON.stringify(e))].join('\n') + '\n';
}

function writeJournal(paths: MaildirPaths, mode: string, entries: readonly { from: string; to: string | null }[]): void {
  writeFileSync(paths.journalFile, journalText(mode, entries));
}

t.test('errors are StorageErrors', async (t) => {
  const { paths, msgs } = setup(t);
  const fs = new FsRecorder();
  fs.fail({ op: 'open', path: paths.journalFile, code: 'ENOSPC' });
  try {
    await applyBatch(fs, paths, planBatch(paths, 'maildir', { deleted: at(msgs, 0), seen: [] }, 'trash'));
    t.fail('resolved');
  } catch (err) {
    t.ok(err instanceof StorageError);
    t.equal((err as StorageError).kind, 'temporary', "the port's kinds for commit: temporary or permanent");
    t.match((err as StorageError).message, /ENOSPC/, 'the message says why');
  }
  assertIntact(t, paths, 'maildir', msgs);
});
