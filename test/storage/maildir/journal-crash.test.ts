/**
 * Crash recovery of the batch journal (issue 2: "SIGKILL a child process
 * mid-batch, in both modes"). A child process locks a 200-message maildrop
 * and applies a batch through the built dist/; it is killed with SIGKILL at
 * a seeded random FsLayer call (by itself, exactly before that call, or by
 * this process once the child reports reaching it). Then, as the next
 * session would, we take the lock (the dead child's lock must be taken over
 * at once), roll the journal forward and check that every message is in
 * exactly one place with its bytes, and that the batch happened entirely or
 * not at all. Replay a failure with MAILDIRD_CRASH_SEED=<seed>.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireMaildropLock } from '../../../src/storage/maildir/lock.js';
import { recoverJournal, type BatchMode, type BatchMessage } from '../../../src/storage/maildir/journal.js';
import { maildirPaths, type MaildirPaths } from '../../../src/storage/maildir/layout.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { assertDistFresh, captureLogger, seededRandom, spawnJsonChild } from '../../helpers/lock-journal-support.js';
import { buildTree, census, type TreeMessage } from '../../helpers/journal-tree.js';

const MESSAGES = 200;
const ITERATIONS = 10;
const SEED = Number(process.env.MAILDIRD_CRASH_SEED ?? 0x5eed);

const stale = assertDistFresh('storage/maildir/journal', 'storage/maildir/lock', 'storage/maildir/layout', 'storage/maildir/fs');
if (stale !== undefined) t.fail(stale);

interface Scenario {
  readonly root: string;
  readonly paths: MaildirPaths;
  readonly form: 'maildir' | 'flat';
  readonly mode: BatchMode;
  readonly msgs: TreeMessage[];
  readonly deleted: Set<string>;
  /** Bases that the Seen step moves (retrieved, in new/, not deleted). */
  readonly seen: Set<string>;
  readonly specFile: string;
}

const testRoots = new WeakMap<Test, string>();

/** A fresh folder per scenario (t.testdir() is one folder per test). */
function freshRoot(t: Test): string {
  let root = testRoots.get(t);
  if (root === undefined) {
    root = t.testdir({});
    testRoots.set(t, root);
  }
  return mkdtempSync(join(root, 's'));
}

function scenario(t: Test, form: 'maildir' | 'flat', mode: BatchMode, rng: () => number): Scenario {
  const root = freshRoot(t);
  const paths = maildirPaths(join(root, 'user'));
  const msgs = buildTree(paths, form, MESSAGES);
  const deletedMsgs: BatchMessage[] = [];
  const retrieved: BatchMessage[] = [];
  const deleted = new Set<string>();
  const seen = new Set<string>();
  for (const m of msgs) {
    const r = rng();
    // About half deleted, a third of the rest retrieved; some deleted ones retrieved too (no Seen for them).
    if (r < 0.5) {
      deletedMsgs.push({ path: m.path, location: m.location });
      deleted.add(m.base);
      if (r < 0.1) retrieved.push({ path: m.path, location: m.location });
    } else if (r < 0.8) {
      retrieved.push({ path: m.path, location: m.location });
      if (m.location === 'new') seen.add(m.base);
    }
  }
  const specFile = join(root, 'spec.json');
  return { root, paths, form, mode, msgs, deleted, seen, specFile };
}

function writeSpec(s: Scenario, phase: 'batch' | 'recover', killAt: number, reportOps: boolean): void {
  const byBase = new Map(s.msgs.map((m) => [m.base, m]));
  const pick = (bases: Iterable<string>) =>
    [...bases].map((b) => ({ path: byBase.get(b)!.path, location: byBase.get(b)!.location }));
  const retrieved = s.msgs.filter((m) => s.seen.has(m.base) || (s.deleted.has(m.base) && m.location === 'new'));
  writeFileSync(
    s.specFile,
    JSON.stringify({
      dir: s.paths.dir,
      form: s.form,
      mode: s.mode,
      phase,
      deleted: pick(s.deleted),
      seen: retrieved.map((m) => ({ path: m.path, location: m.location })),
      killAt,
      reportOps,
    }),
  );
}

interface Run {
  readonly finished: boolean;
  readonly calls: { op: number; call: string; path?: string }[];
  readonly ops?: number;
}

/** Run the child; `killAt` 0 runs to the end. `by: 'parent'` kills from here once the child reports call `killAt`. */
async function runChild(s: Scenario, phase: 'batch' | 'recover', killAt: number, by: 'self' | 'parent'): Promise<Run> {
  writeSpec(s, phase, by === 'self' ? killAt : 0, by === 'parent' || killAt === 0);
  const child = spawnJsonChild('journal-child.mjs', [s.specFile]);
  const calls: { op: number; call: string; path?: string }[] = [];
  let ops: number | undefined;
  let finished = false;
  for (;;) {
    let line: Record<string, unknown>;
    try {
      line = await child.next();
    } catch {
      break; // exited (killed)
    }
    if (line.event === 'done') {
      finished = true;
      ops = Number(line.ops);
      break;
    }
    if (typeof line.op === 'number') {
      calls.push(line as unknown as { op: number; call: string });
      if (by === 'parent' && killAt > 0 && line.op >= killAt) child.process.kill('SIGKILL');
    }
  }
  const exit = await child.exited;
  if (!finished && exit.signal !== 'SIGKILL') throw new Error(`child failed: ${JSON.stringify(exit)}`);
  return ops === undefined ? { finished, calls } : { finished, calls, ops };
}

type Outcome = 'all' | 'none';

/**
 * Take the lock as the next session would, recover, and check the tree.
 * Returns whether the batch happened entirely or not at all (anything else fails the test).
 */
async function recoverAndCheck(t: Test, s: Scenario): Promise<Outcome | undefined> {
  const log = captureLogger();
  const lock = await acquireMaildropLock(nodeFs, s.paths, { logger: log.logger });
  await recoverJournal(nodeFs, s.paths, log.logger);
  const places = census(s.paths, s.form);
  let done = 0;
  let undone = 0;
  let broken = 0;
  for (const m of s.msgs) {
    const found = places.get(m.base) ?? [];
    const where = found.map((p) => p.where);
    const isIntact = found.every((p) => p.body === m.body);
    if (!isIntact) broken += 1;
    if (s.deleted.has(m.base)) {
      const inTrash = s.form === 'maildir' ? 'trash-cur' : 'trash-flat';
      if (s.mode === 'expunge' ? found.length === 0 : where.length === 1 && where[0] === inTrash) done += 1;
      else if (where.length === 1 && where[0] === (s.form === 'maildir' ? m.location : 'flat')) undone += 1;
      else broken += 1;
    } else if (s.seen.has(m.base)) {
      if (found.length === 1 && where[0] === 'cur' && found[0]!.name === `${m.base}:2,S`) done += 1;
      else if (found.length === 1 && where[0] === 'new') undone += 1;
      else broken += 1;
    } else if (found.length !== 1 || join(dirFor(s, where[0]), found[0]!.name) !== m.path) {
      broken += 1;
    }
  }
  t.equal(broken, 0, 'every message in exactly one place, bytes intact, untouched ones untouched');
  t.ok(done === 0 || undone === 0, `all or nothing (done ${done}, not done ${undone})`);
  t.notOk(existsSync(s.paths.journalFile), 'no journal left');
  t.notOk(existsSync(`${s.paths.journalFile}.next`), 'no journal scratch left');
  await lock.release();
  t.notOk(existsSync(s.paths.lockFile), 'the lock was taken and released');
  const scratch = readdirSync(s.paths.dir).filter((n) => n.startsWith('maildird.lock.'));
  t.ok(scratch.length <= 1 && scratch.every((n) => /^maildird\.lock\.[0-9a-f]+\.(tmp|release|probe)$/.test(n)), 'at most one scratch file of the killed lock', { scratch });
  if (broken > 0 || (done > 0 && undone > 0)) return undefined;
  return done > 0 ? 'all' : 'none';
}

function dirFor(s: Scenario, where: string | undefined): string {
  switch (where) {
    case 'new':
      return s.paths.new;
    case 'cur':
      return s.paths.cur;
    case 'flat':
      return s.paths.dir;
    default:
      return '?';
  }
}

/** FsLayer call numbers (1-based) that bound the journal: created, and the first move after it is durable. */
function landmarks(calls: Run['calls'], journalFile: string): { journalOpen: number; firstMove: number; lastOp: number } {
  const journalOpen = calls.find((c) => c.call === 'open' && c.path === journalFile)?.op ?? 0;
  const firstMove = calls.find((c) => c.op > journalOpen && (c.call === 'link' || c.call === 'unlink') && c.path !== journalFile)?.op ?? 0;
  return { journalOpen, firstMove, lastOp: calls.at(-1)?.op ?? 0 };
}

for (const [form, mode] of [
  ['maildir', 'trash'],
  ['maildir', 'expunge'],
  ['flat', 'trash'],
] as const) {
  const iterations = form === 'flat' ? 3 : ITERATIONS;
  t.test(`SIGKILL mid-batch: ${form} ${mode} (seed ${SEED})`, async (t) => {
    const rng = seededRandom(SEED ^ (form === 'flat' ? 0xf1a7 : mode === 'trash' ? 0x7a5 : 0xe9));
    // A full run first: the number of calls, and where the journal begins and the moves start.
    const calib = scenario(t, form, mode, seededRandom(1));
    const full = await runChild(calib, 'batch', 0, 'self');
    t.ok(full.finished, 'an uninterrupted batch finishes');
    t.equal(await recoverAndCheck(t, calib), 'all', 'and does everything');
    const marks = landmarks(full.calls, calib.paths.journalFile);
    t.ok(marks.journalOpen > 0 && marks.firstMove > marks.journalOpen, 'the journal comes before the first move', marks);
    const outcomes = { all: 0, none: 0 };
    for (let i = 0; i < iterations; i++) {
      const by = i % 3 === 2 ? 'parent' : 'self';
      const killAt = 1 + Math.floor(rng() * marks.lastOp);
      await t.test(`kill ${by === 'self' ? 'before' : 'at about'} call ${killAt} of ${marks.lastOp}`, async (t) => {
        const s = scenario(t, form, mode, seededRandom(1));
        const run = await runChild(s, 'batch', killAt, by);
        const outcome = await recoverAndCheck(t, s);
        if (outcome !== undefined) outcomes[outcome] += 1;
        if (by === 'self' && !run.finished) {
          if (killAt <= marks.journalOpen) t.equal(outcome, 'none', 'killed before the journal existed: nothing happened');
          if (killAt > marks.firstMove) t.equal(outcome, 'all', 'killed after a move: the journal finished the batch');
        }
      });
    }
    t.comment(`outcomes: ${JSON.stringify(outcomes)}`);
  });
}

t.test(`SIGKILL during recovery, then recover again (seed ${SEED})`, async (t) => {
  const rng = seededRandom(SEED ^ 0x2ec0);
  for (const mode of ['trash', 'expunge'] as const) {
    // Calibrate: where the batch's moves are, and where a recovery starts work.
    const calib = scenario(t, 'maildir', mode, seededRandom(2));
    const full = await runChild(calib, 'batch', 0, 'self');
    const marks = landmarks(full.calls, calib.paths.journalFile);
    const killMidMoves = () => marks.firstMove + 1 + Math.floor(rng() * (marks.lastOp - marks.firstMove - 20));
    const left = scenario(t, 'maildir', mode, seededRandom(2));
    await runChild(left, 'batch', killMidMoves(), 'self');
    const recovery = await runChild(left, 'recover', 0, 'self');
    t.equal(await recoverAndCheck(t, left), 'all', `${mode}: an uninterrupted recovery finishes the batch`);
    const readAt = recovery.calls.find((c) => c.call === 'readFile' && c.path === left.paths.journalFile)?.op ?? 0;
    const recoveryOps = recovery.calls.at(-1)?.op ?? 0;
    t.ok(readAt > 0 && recoveryOps > readAt + 2, `${mode}: recovery reads the journal at call ${readAt} of ${recoveryOps}`);
    for (let i = 0; i < 3; i++) {
      const s = scenario(t, 'maildir', mode, seededRandom(2));
      const firstKill = killMidMoves();
      await runChild(s, 'batch', firstKill, 'self');
      t.ok(existsSync(s.paths.journalFile), `${mode}: a journal is left after a kill before call ${firstKill}`);
      // Die again while rolling it forward: within the first half of the calibration's
      // work, since the entries left differ a little from one kill to the next.
      const secondKill = readAt + 1 + Math.floor(rng() * ((recoveryOps - readAt) / 2));
      const killed = await runChild(s, 'recover', secondKill, 'self');
      t.notOk(killed.finished, `${mode}: recovery killed before call ${secondKill}`);
      t.ok(existsSync(s.paths.journalFile), `${mode}: the journal outlives a killed recovery`);
      t.equal(await recoverAndCheck(t, s), 'all', `${mode}: recovered again, the whole batch is done`);
    }
  }
});
