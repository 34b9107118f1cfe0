import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  MaildirDeliverer,
  createDeliveryCounters,
  type FolderResolver,
  type MaildirDelivererOptions,
} from '../../../src/storage/maildir/deliver.js';
import { nodeFs, type FsLayer } from '../../../src/storage/maildir/fs.js';
import { detectForm, resolveUserDir } from '../../../src/storage/maildir/layout.js';
import { parseMaildirName } from '../../../src/storage/maildir/filename.js';
import { StorageError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log/logger.js';
import type { DeliveryOutcome, MailUser } from '../../../src/storage/store.js';
import { FsRecorder, gate, type FsCall } from '../../helpers/fs-recorder.js';

const fixtureDir = new URL('../../../fixtures/messages/', import.meta.url);
const fixtures = readdirSync(fixtureDir)
  .filter((name) => name.endsWith('.eml'))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(new URL(name, fixtureDir)) }));

/*
 * Oracles: DESIGN.md "Stored bytes" and "Wire size" written byte by byte,
 * independent of src/storage/wire.ts.
 */
function oracleStored(input: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    if (input[i] === 0x0d && input[i + 1] === 0x0a) continue; // CRLF -> LF; a lone CR stays
    out.push(input[i]!);
  }
  return Buffer.from(out);
}

function oracleWireSize(stored: Buffer): number {
  let n = stored.length;
  for (let i = 0; i < stored.length; i++) if (stored[i] === 0x0a && (i === 0 || stored[i - 1] !== 0x0d)) n++;
  if (stored.length > 0 && stored[stored.length - 1] !== 0x0a) n += 2;
  return n;
}

/** Every LF not preceded by CR becomes CRLF: what an SMTP client sends. */
function crlf(input: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    if (input[i] === 0x0a && (i === 0 || input[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(input[i]!);
  }
  return Buffer.from(out);
}

async function* chunked(bytes: Buffer, size: number, onDone?: () => void): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  onDone?.();
}

function resolver(root: string, fs: FsLayer = nodeFs, template = '%u'): FolderResolver {
  return async (user) => {
    const dir = resolveUserDir(root, template, user);
    return { dir, form: await detectForm(fs, dir) };
  };
}

function deliverer(options: MaildirDelivererOptions = {}): MaildirDeliverer {
  return new MaildirDeliverer({ hostname: 'mx.test', chownToUser: false, ...options });
}

function okId(t: Test, outcome: DeliveryOutcome | undefined): string {
  if (outcome === undefined || !outcome.ok) {
    t.fail(`delivery failed: ${outcome === undefined ? 'no outcome' : `${outcome.error.kind} ${outcome.error.message}`}`);
    return '';
  }
  return outcome.id;
}

function failure(outcome: DeliveryOutcome | undefined): StorageError | undefined {
  return outcome !== undefined && !outcome.ok ? outcome.error : undefined;
}

const ls = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);

function assertNoFiles(t: Test, userDir: string, what: string): void {
  t.same(ls(join(userDir, 'tmp')), [], `${what}: tmp/ is empty`);
  t.same(ls(join(userDir, 'new')), [], `${what}: new/ is empty`);
}

const alice: MailUser = { name: 'alice' };
const bob: MailUser = { name: 'bob' };
const carol: MailUser = { name: 'carol' };

t.test('every fixture is stored byte-exact with LF line ends and named with S= and W=', async (t) => {
  const root = t.testdir({});
  const d = deliverer();
  const expected = new Map<string, Buffer>();
  for (const fixture of fixtures) {
    const inputs: [string, Buffer | AsyncIterable<Buffer>, Buffer][] = [
      ['as is', fixture.bytes, fixture.bytes],
      ['CRLF', crlf(fixture.bytes), crlf(fixture.bytes)],
      ['CRLF in 7-byte chunks', chunked(crlf(fixture.bytes), 7), crlf(fixture.bytes)],
      ['CRLF in 1-byte chunks', chunked(crlf(fixture.bytes), 1), crlf(fixture.bytes)],
    ];
    for (const [how, content, raw] of inputs) {
      const [outcome] = await d.deliver({ recipients: [alice], content }, resolver(root));
      const id = okId(t, outcome);
      expected.set(id, oracleStored(raw));
      t.comment(`${fixture.name} ${how}: ${id}`);
    }
  }
  const dir = join(root, 'alice');
  t.same(ls(join(dir, 'tmp')), [], 'no tmp file left');
  t.equal(ls(join(dir, 'new')).length, fixtures.length * 4, 'one file per delivery');
  for (const [id, stored] of expected) {
    const file = join(dir, 'new', id);
    const bytes = readFileSync(file);
    t.ok(bytes.equals(stored), `${id}: stored bytes`);
    const parsed = parseMaildirName(id);
    t.equal(parsed?.size, bytes.length, `${id}: S= is the file size`);
    t.equal(parsed?.wireSize, oracleWireSize(bytes), `${id}: W= is the wire size`);
    t.match(id, /^\d+\.M\d+P\d+Q\d+\.mx\.test,S=\d+,W=\d+$/, 'unique name as the Maildir spec says');
    t.equal(statSync(file).mode & 0o777, 0o600, 'file mode 0600');
  }
  t.equal(d.stats.delivered, fixtures.length * 4);
});

t.test('the empty message and a lone CR at the very end', async (t) => {
  const root = t.testdir({});
  const d = deliverer();
  const cases: [Buffer | AsyncIterable<Buffer>, Buffer][] = [
    [Buffer.alloc(0), Buffer.alloc(0)],
    [Buffer.from('a\r'), Buffer.from('a\r')],
    [chunked(Buffer.from('a\r\r\n'), 3), Buffer.from('a\r\n')],
    [chunked(Buffer.from('x\r\ny\r'), 2), Buffer.from('x\ny\r')],
  ];
  for (const [content, stored] of cases) {
    const id = okId(t, (await d.deliver({ recipients: [alice], content }, resolver(root)))[0]);
    const bytes = readFileSync(join(root, 'alice', 'new', id));
    t.same([...bytes], [...stored]);
    t.equal(parseMaildirName(id)?.wireSize, oracleWireSize(stored));
  }
});

t.test('several recipients: each gets its own file with its own prefix, body copied', async (t) => {
  const root = t.testdir({});
  const d = deliverer();
  // Over 64 KiB so the copy takes several chunks; CRLF on the wire, a lone CR in it.
  const line = 'The quick brown fox jumps over the lazy dog \r 0123456789\r\n';
  const content = Buffer.from(`Subject: big\r\n\r\n${line.repeat(3000)}`);
  const prefix = (user: MailUser) => `Delivered-To: ${user.name}\r\nReceived: from test\r\n\tby mx.test\r\n`;
  const outcomes = await d.deliver(
    { recipients: [alice, bob, carol], content: chunked(content, 10_000), prefix },
    resolver(root),
  );
  t.equal(outcomes.length, 3);
  const ids = new Set<string>();
  for (const [i, user] of [alice, bob, carol].entries()) {
    const outcome = outcomes[i];
    t.equal(outcome?.user, user.name, 'outcomes in recipient order');
    const id = okId(t, outcome);
    ids.add(id);
    const bytes = readFileSync(join(root, user.name, 'new', id));
    const expected = oracleStored(Buffer.concat([Buffer.from(prefix(user)), content]));
    t.ok(bytes.equals(expected), `${user.name}: prefix + body, stored form`);
    t.equal(parseMaildirName(id)?.size, bytes.length);
    t.equal(parseMaildirName(id)?.wireSize, oracleWireSize(bytes));
    t.same(ls(join(root, user.name, 'tmp')), []);
  }
  t.equal(ids.size, 3, 'distinct names');
});

t.test('a prefix without a final line end gets one', async (t) => {
  const root = t.testdir({});
  const id = okId(
    t,
    (await deliverer().deliver({ recipients: [alice], content: Buffer.from('Subject: x\n\nbody\n'), prefix: () => 'X-Tag: 1' }, resolver(root)))[0],
  );
  t.equal(readFileSync(join(root, 'alice', 'new', id), 'latin1'), 'X-Tag: 1\nSubject: x\n\nbody\n');
});

t.test('a new user gets a Maildir: 0700 folders, 0600 file, owned by the user when asked', async (t) => {
  const root = t.testdir({});
  const user: MailUser = { name: 'dave@example.org', uid: 4321, gid: 4322 };
  const d = deliverer({ chownToUser: true });
  const id = okId(t, (await d.deliver({ recipients: [user], content: Buffer.from('hi\n') }, resolver(root, nodeFs, '%d/%n')))[0]);
  const dir = join(root, 'example.org', 'dave');
  t.equal(statSync(join(root, 'example.org')).mode & 0o777, 0o711, 'shared parent: enterable, not listable');
  for (const sub of ['', 'cur', 'new', 'tmp']) {
    const st = statSync(join(dir, sub));
    t.equal(st.mode & 0o777, 0o700, `${sub || 'user folder'} is 0700`);
    if (process.getuid?.() === 0) t.same([st.uid, st.gid], [4321, 4322], `${sub || 'user folder'} belongs to the user`);
  }
  const file = statSync(join(dir, 'new', id));
  t.equal(file.mode & 0o777, 0o600);
  if (process.getuid?.() === 0) t.same([file.uid, file.gid], [4321, 4322], 'message belongs to the user');
  const mine = deliverer({ chownToUser: false });
  const id2 = okId(t, (await mine.deliver({ recipients: [{ name: 'erin', uid: 4321, gid: 4321 }], content: Buffer.from('x\n') }, resolver(root)))[0]);
  t.equal(statSync(join(root, 'erin', 'new', id2)).uid, process.getuid?.(), 'no chown unless configured');
});

t.test('a Maildir missing tmp/ and new/ is repaired', async (t) => {
  const root = t.testdir({ alice: { cur: {} } });
  const id = okId(t, (await deliverer().deliver({ recipients: [alice], content: Buffer.from('x\n') }, resolver(root)))[0]);
  t.ok(existsSync(join(root, 'alice', 'new', id)));
});

t.test('flat folder: .<unique>.tmp, fsync, rename to <unique>.eml, fsync the folder', async (t) => {
  const root = t.testdir({ alice: { 'old.eml': 'Subject: old\n\nold\n' } });
  const fs = new FsRecorder();
  const d = deliverer({ fs });
  const pending = d.deliver({ recipients: [alice], content: Buffer.from('Subject: new\r\n\r\nnew\r\n') }, resolver(root, fs));
  const id = okId(t, (await pending)[0]);
  fs.mark('resolved');
  const dir = join(root, 'alice');
  t.same(ls(dir), ['old.eml', `${id}.eml`].sort(), 'no dot file left, no cur/new/tmp made');
  t.equal(readFileSync(join(dir, `${id}.eml`), 'latin1'), 'Subject: new\n\nnew\n');
  const tmp = join(dir, `.${id}.tmp`);
  const fsync = fs.ops('fsync', tmp)[0];
  const rename = fs.ops('rename', tmp)[0];
  const dirSync = fs.ops('fsyncDir').find((c) => c.path === dir);
  const resolved = fs.ops('mark', 'resolved')[0];
  t.ok(fsync && rename && dirSync && resolved);
  t.equal(rename?.to, join(dir, `${id}.eml`));
  t.ok(fsync!.end! < rename!.seq, 'file fsync before rename');
  t.ok(rename!.end! < dirSync!.seq, 'rename before the folder fsync');
  t.ok(dirSync!.end! < resolved!.seq, 'folder fsync before the outcome');
});

/** For one delivered id: its file fsync, rename and the first covering new/ fsync. */
function chain(fs: FsRecorder, userDir: string, id: string): { fsync?: FsCall; rename?: FsCall; dirSync?: FsCall } {
  const unique = id.split(',')[0]!;
  const tmp = join(userDir, 'tmp', unique);
  const rename = fs.ops('rename', tmp).find((c) => c.to === join(userDir, 'new', id));
  const fsync = fs.ops('fsync', tmp).find((c) => c.path === tmp);
  const dirSync =
    rename === undefined
      ? undefined
      : fs.ops('fsyncDir').find((c) => c.path === join(userDir, 'new') && c.seq > rename.end! && c.error === undefined);
  const result: { fsync?: FsCall; rename?: FsCall; dirSync?: FsCall } = {};
  if (fsync) result.fsync = fsync;
  if (rename) result.rename = rename;
  if (dirSync) result.dirSync = dirSync;
  return result;
}

t.test('one delivery: write, file fsync < rename < fsync of new/ < outcome', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  const id = okId(t, (await deliverer({ fs }).deliver({ recipients: [alice], content: Buffer.from('x\n') }, resolver(root, fs)))[0]);
  const resolved = fs.mark('resolved');
  const userDir = join(root, 'alice');
  const { fsync, rename, dirSync } = chain(fs, userDir, id);
  t.ok(fsync && rename && dirSync, 'all three happened');
  const writes = fs.ops('write', join(userDir, 'tmp'));
  t.ok(writes.length > 0 && writes.every((w) => w.end! < fsync!.seq), 'every write before the file fsync');
  t.ok(fsync!.end! < rename!.seq, 'file fsync completed before the rename');
  t.ok(rename!.end! < dirSync!.seq, 'rename completed before the directory fsync started');
  t.ok(dirSync!.end! < resolved.seq, 'directory fsync completed before the outcome');
  t.same(
    fs.calls.filter((c) => c.op !== 'mark' && c.op !== 'stat').map((c) => c.op),
    ['open', 'write', 'fsync', 'close', 'rename', 'fsyncDir'],
    'nothing else on the way (unlimited quota reads no file)',
  );
});

t.test('a 10 KB message streamed in small chunks, with its prefix, is one write; a large one writes 64 KiB at a time', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  const d = deliverer({ fs });
  const small = Buffer.from(`Subject: s\r\n\r\n${'a'.repeat(10_000)}\r\n`);
  const prefix = () => 'Return-Path: <s@example.net>\n';
  const [one] = await d.deliver({ recipients: [alice], content: chunked(small, 1460), prefix }, resolver(root, fs));
  t.ok(one?.ok);
  t.equal(fs.ops('write', join(root, 'alice', 'tmp')).length, 1, 'prefix and 7 chunks: one write');
  const large = Buffer.from(`Subject: l\n\n${'b'.repeat(200_000)}\n`);
  const before = fs.ops('write', join(root, 'alice', 'tmp')).length;
  const [two] = await d.deliver({ recipients: [alice], content: chunked(large, 1460), prefix }, resolver(root, fs));
  t.ok(two?.ok);
  t.equal(fs.ops('write', join(root, 'alice', 'tmp')).length - before, 4, 'ceil(200 KB / 64 KiB) writes');
  const stored = ls(join(root, 'alice', 'new')).map((n) => readFileSync(join(root, 'alice', 'new', n), 'latin1'));
  t.same(stored.sort(), [`${prefix()}Subject: l\n\n${'b'.repeat(200_000)}\n`, `${prefix()}Subject: s\n\n${'a'.repeat(10_000)}\n`].sort(), 'the bytes, in order');
});

t.test('concurrent deliveries share directory fsyncs, and each is covered by one that started after its rename', async (t) => {
  const N = 200;
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const userDir = join(root, 'alice');
  const fs = new FsRecorder();
  // Hold the first two fsyncs of new/ (group-commit.ts runs two at a time)
  // until every message is renamed: all the others must then be
  // acknowledged by an fsync that starts later.
  const hold = gate();
  fs.fail({ op: 'fsyncDir', path: /\/new$/, wait: hold.promise, times: 2 });
  const rename = fs.rename.bind(fs);
  let renamed = 0;
  fs.rename = async (from, to) => {
    await rename(from, to);
    if (++renamed === N) hold.open();
  };
  const d = deliverer({ fs });
  const ids = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const [outcome] = await d.deliver({ recipients: [alice], content: Buffer.from(`Subject: ${i}\r\n\r\nmessage ${i}\r\n`) }, resolver(root, fs));
      const id = okId(t, outcome);
      fs.mark(`ok ${id}`);
      return id;
    }),
  );
  t.equal(new Set(ids).size, N, 'all distinct');
  t.same(ls(join(userDir, 'tmp')), [], 'no tmp file left');
  t.same(ls(join(userDir, 'new')), [...ids].sort(), 'all present');
  const dirSyncs = fs.ops('fsyncDir', /\/new$/);
  t.equal(dirSyncs.length, 3, 'two held fsyncs, then one for the other 198');
  t.equal(fs.ops('fsync', /\/tmp\//).length, N, 'every file fsynced');
  let covered = 0;
  for (const id of ids) {
    const { fsync, rename: r, dirSync } = chain(fs, userDir, id);
    const ok = fs.ops('mark', `ok ${id}`)[0];
    if (fsync && r && dirSync && ok && fsync.end! < r.seq && r.end! < dirSync.seq && dirSync.end! < ok.seq) covered++;
  }
  t.equal(covered, N, 'file fsync < rename < covering new/ fsync < outcome, for every message');
  t.equal(d.stats.fileFsyncs, N);
  t.equal(d.stats.dirFsyncs, 3);
  t.equal(d.stats.fsyncs, N + 3);
});

t.test('hundreds of concurrent deliveries to several users, no help from the test', async (t) => {
  const root = t.testdir({});
  const fs = new FsRecorder();
  const stats = createDeliveryCounters();
  const d = deliverer({ fs, stats });
  const users = [alice, bob, carol];
  const N = 300;
  const results = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const user = users[i % users.length]!;
      const body = Buffer.from(`Subject: ${i}\r\n\r\n${`line ${i}\r\n`.repeat(i % 50)}`);
      const [outcome] = await d.deliver({ recipients: [user], content: body }, resolver(root, fs));
      return { user, id: okId(t, outcome), body };
    }),
  );
  t.equal(new Set(results.map((r) => r.id)).size, N, 'all distinct');
  for (const user of users) {
    t.same(ls(join(root, user.name, 'tmp')), [], `${user.name}: no tmp file`);
    t.equal(ls(join(root, user.name, 'new')).length, N / users.length, `${user.name}: all present`);
  }
  let exact = 0;
  for (const r of results) if (readFileSync(join(root, r.user.name, 'new', r.id)).equals(oracleStored(r.body))) exact++;
  t.equal(exact, N, 'every file holds its own message');
  const newSyncs = fs.ops('fsyncDir', /\/new$/).length;
  t.ok(newSyncs < N, `directory fsyncs of new/: ${newSyncs} for ${N} messages`);
  t.equal(stats.delivered, N);
  t.equal(stats.fileFsyncs, N);
  t.comment(`fsyncs per message: ${(stats.fsyncs / N).toFixed(2)} (${stats.fileFsyncs} file, ${stats.dirFsyncs} directory)`);
});

t.test('concurrent deliveries from several processes into one Maildir', async (t) => {
  const root = t.testdir({});
  const child = fileURLToPath(new URL('../../helpers/maildir-write-child.ts', import.meta.url));
  const run = (tag: string, count: number) =>
    new Promise<{ tag: string; ids: string[] }>((resolve, reject) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify({ root, user: 'shared', count, tag })], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
      proc.on('error', reject);
      proc.on('close', (code) => {
        if (code !== 0) reject(new Error(`child ${tag} exited ${code}: ${err}`));
        else resolve(JSON.parse(out) as { tag: string; ids: string[] });
      });
    });
  // The Maildir does not exist yet: the children also race to create it.
  const tags = ['p1', 'p2', 'p3', 'p4'];
  const results = await Promise.all(tags.map((tag) => run(tag, 60)));
  const ids = results.flatMap((r) => r.ids);
  t.notOk(ids.some((id) => id.startsWith('FAILED')), 'every child delivery succeeded');
  const dir = join(root, 'shared');
  t.same(ls(join(dir, 'new')), [...ids].sort(), 'all 240 present, none extra');
  t.equal(new Set(ids).size, 240, 'all distinct');
  t.same(ls(join(dir, 'tmp')), [], 'no tmp file left');
  const bodies = new Set(ls(join(dir, 'new')).map((name) => readFileSync(join(dir, 'new', name), 'latin1')));
  for (const tag of tags) {
    for (const i of [0, 59]) t.ok(bodies.has(`Subject: ${tag}-${i}\n\nfrom ${tag} number ${i}\n`), `${tag} #${i} stored`);
  }
  t.equal(bodies.size, 240, 'every message distinct');
});

/** This process's open descriptors (Linux): delivery's temporary files are plain descriptors, nothing closes them for us. */
function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

t.test('injected failures at each step: the right kind, no file left in tmp/ or new/', async (t) => {
  const cases: { step: string; rule: Parameters<FsRecorder['fail']>[0]; kind: string }[] = [
    { step: 'ENOSPC at open', rule: { op: 'open', path: /\/tmp\//, code: 'ENOSPC' }, kind: 'no-space' },
    { step: 'EACCES at open', rule: { op: 'open', path: /\/tmp\//, code: 'EACCES' }, kind: 'permanent' },
    { step: 'ENOSPC at write', rule: { op: 'write', path: /\/tmp\//, code: 'ENOSPC' }, kind: 'no-space' },
    { step: 'EDQUOT at a later write', rule: { op: 'write', path: /\/tmp\//, code: 'EDQUOT', skip: 2 }, kind: 'no-space' },
    { step: 'EIO at file fsync', rule: { op: 'fsync', path: /\/tmp\//, code: 'EIO' }, kind: 'temporary' },
    { step: 'EIO at close', rule: { op: 'close', path: /\/tmp\//, code: 'EIO' }, kind: 'temporary' },
    { step: 'EACCES at rename', rule: { op: 'rename', code: 'EACCES' }, kind: 'permanent' },
    { step: 'EIO at fsync of new/', rule: { op: 'fsyncDir', path: /\/new$/, code: 'EIO' }, kind: 'temporary' },
  ];
  for (const c of cases) {
    await t.test(c.step, async (t) => {
      const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
      const fs = new FsRecorder();
      fs.fail(c.rule);
      const d = deliverer({ fs });
      const descriptors = openDescriptors();
      // Over 128 KiB, so the content goes out in three writes (up to 64 KiB each are gathered).
      const content = chunked(Buffer.from(`Subject: x\r\n\r\n${'y'.repeat(150_000)}\r\n`), 4096);
      const [outcome] = await d.deliver({ recipients: [alice], content }, resolver(root, fs));
      t.equal(outcome?.ok, false);
      t.equal(failure(outcome)?.kind, c.kind);
      t.ok(failure(outcome) instanceof StorageError);
      assertNoFiles(t, join(root, 'alice'), c.step);
      t.equal(d.stats.delivered, 0);
      t.equal(openDescriptors(), descriptors, 'no descriptor left open');
      fs.clearFaults();
      const [again] = await d.deliver({ recipients: [alice], content: Buffer.from('ok\n') }, resolver(root, fs));
      t.ok(again?.ok, 'the next delivery works');
    });
  }
});

t.test('one failing delivery among concurrent ones fails alone', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'fsync', path: /\/tmp\//, code: 'EIO', skip: 5, times: 1 });
  const d = deliverer({ fs });
  const outcomes = (
    await Promise.all(Array.from({ length: 20 }, (_, i) => d.deliver({ recipients: [alice], content: Buffer.from(`${i}\n`) }, resolver(root, fs))))
  ).flat();
  t.equal(outcomes.filter((o) => !o.ok).length, 1);
  t.equal(ls(join(root, 'alice', 'new')).length, 19);
  t.same(ls(join(root, 'alice', 'tmp')), []);
});

t.test('a rename that reports an error but happened (NFS) counts as done', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'rename', code: 'ENOENT', afterEffect: true });
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
  const [outcome] = await deliverer({ fs, logger }).deliver({ recipients: [alice], content: Buffer.from('x\n') }, resolver(root, fs));
  const id = okId(t, outcome);
  t.same(ls(join(root, 'alice', 'new')), [id]);
  t.same(ls(join(root, 'alice', 'tmp')), []);
  t.ok(fs.ops('fsyncDir', /\/new$/).length === 1, 'and it was still made durable');
  t.match(lines.join(''), /rename reported an error but happened/);
});

t.test('a rename that failed for real is not mistaken for one that happened', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'rename', code: 'ENOENT' });
  const [outcome] = await deliverer({ fs }).deliver({ recipients: [alice], content: Buffer.from('x\n') }, resolver(root, fs));
  t.equal(failure(outcome)?.kind, 'not-found');
  assertNoFiles(t, join(root, 'alice'), 'after ENOENT');
});

t.test('several recipients: one failing recipient does not fail the others', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} }, bob: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'write', path: /\/bob\/tmp\//, code: 'ENOSPC' });
  const outcomes = await deliverer({ fs }).deliver({ recipients: [alice, bob], content: Buffer.from('x\n') }, resolver(root, fs));
  t.ok(outcomes[0]?.ok);
  t.equal(failure(outcomes[1])?.kind, 'no-space');
  assertNoFiles(t, join(root, 'bob'), 'bob');
  t.equal(ls(join(root, 'alice', 'new')).length, 1);
});

t.test('several recipients: when the first file cannot be written, nobody gets a copy', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} }, bob: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'write', path: /\/alice\/tmp\//, code: 'ENOSPC' });
  let drained = false;
  const outcomes = await deliverer({ fs }).deliver(
    { recipients: [alice, bob], content: chunked(Buffer.from('x'.repeat(1000)), 100, () => (drained = true)) },
    resolver(root, fs),
  );
  t.same(outcomes.map((o) => failure(o)?.kind), ['no-space', 'no-space']);
  t.ok(drained, 'the content was still read to its end');
  assertNoFiles(t, join(root, 'alice'), 'alice');
  assertNoFiles(t, join(root, 'bob'), 'bob');
});

t.test('several recipients: the first cannot even open a file, the second takes the stream', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} }, bob: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'open', path: /\/alice\/tmp\//, code: 'EACCES' });
  const outcomes = await deliverer({ fs }).deliver({ recipients: [alice, bob], content: chunked(Buffer.from('a\r\nb\r\n'), 2) }, resolver(root, fs));
  t.equal(failure(outcomes[0])?.kind, 'permanent');
  const id = okId(t, outcomes[1]);
  t.equal(readFileSync(join(root, 'bob', 'new', id), 'latin1'), 'a\nb\n');
});

t.test('a recipient whose folder cannot be resolved fails alone', async (t) => {
  const root = t.testdir({});
  const base = resolver(root);
  const resolve: FolderResolver = async (user) => {
    if (user.name === 'evil') throw new StorageError('invalid-name', 'outside the root');
    return base(user);
  };
  const outcomes = await deliverer().deliver({ recipients: [{ name: 'evil' }, alice], content: Buffer.from('x\n') }, resolve);
  t.equal(failure(outcomes[0])?.kind, 'invalid-name');
  t.ok(outcomes[1]?.ok);
});

t.test('over maxBytes: too-large for everyone, nothing written, the content drained', async (t) => {
  const root = t.testdir({});
  const fs = new FsRecorder();
  let drained = false;
  const content = chunked(Buffer.from('z'.repeat(1000)), 100, () => (drained = true));
  const outcomes = await deliverer({ fs }).deliver({ recipients: [alice, bob], content, maxBytes: 500 }, resolver(root, fs));
  t.same(outcomes.map((o) => failure(o)?.kind), ['too-large', 'too-large']);
  t.ok(drained);
  assertNoFiles(t, join(root, 'alice'), 'alice');
  assertNoFiles(t, join(root, 'bob'), 'bob');
  t.equal(fs.ops('rename').length, 0);
  const [exact] = await deliverer().deliver({ recipients: [alice], content: Buffer.from('z'.repeat(500)), maxBytes: 500 }, resolver(root));
  t.ok(exact?.ok, 'exactly maxBytes is accepted');
});

t.test('content that cannot be read: rejects, and no file is left for anyone', async (t) => {
  const root = t.testdir({});
  async function* broken(): AsyncGenerator<Buffer> {
    yield Buffer.from('Subject: x\r\n');
    yield Buffer.from('\r\nbody');
    throw new Error('connection reset');
  }
  await t.rejects(deliverer().deliver({ recipients: [alice, bob], content: broken() }, resolver(root)), {
    name: 'StorageError',
    kind: 'temporary',
  });
  assertNoFiles(t, join(root, 'alice'), 'alice');
  assertNoFiles(t, join(root, 'bob'), 'bob');
});

t.test('the content is read while the first file is still opening; its prefix still leads', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  const held = gate();
  fs.fail({ op: 'open', path: /\/alice\/tmp\//, wait: held.promise, times: 1 });
  let isRead = false;
  const content = chunked(Buffer.from('Subject: early\r\n\r\nbody\r\n'), 5, () => (isRead = true));
  const delivering = deliverer({ fs }).deliver({ recipients: [alice], content, prefix: () => 'X-Prefix: 1\n' }, resolver(root, fs));
  for (let i = 0; i < 50 && !isRead; i++) await new Promise((r) => setImmediate(r));
  t.ok(isRead, 'every chunk consumed before the open completed');
  t.equal(fs.ops('write', /\/tmp\//).length, 0, 'nothing written yet');
  held.open();
  const id = okId(t, (await delivering)[0]);
  t.equal(readFileSync(join(root, 'alice', 'new', id), 'latin1'), 'X-Prefix: 1\nSubject: early\n\nbody\n');
  t.equal(fs.ops('write', /\/tmp\//).length, 1, 'prefix and content in one write');
});

t.test('content that fails while the first file is still opening: rejects, the file opened later is removed', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  const held = gate();
  fs.fail({ op: 'open', path: /\/alice\/tmp\//, wait: held.promise, times: 1 });
  async function* broken(): AsyncGenerator<Buffer> {
    yield Buffer.from('Subject: x\r\n');
    setTimeout(held.open, 20); // the open completes after the failure
    throw new Error('connection reset');
  }
  const descriptors = openDescriptors();
  await t.rejects(deliverer({ fs }).deliver({ recipients: [alice], content: broken() }, resolver(root, fs)), {
    name: 'StorageError',
    kind: 'temporary',
  });
  t.equal(fs.ops('open', /\/alice\/tmp\//).length, 1, 'the file was opened');
  assertNoFiles(t, join(root, 'alice'), 'alice');
  t.equal(openDescriptors(), descriptors, 'and closed');
});

t.test('quota: a delivery that would exceed it is refused and nothing is written', async (t) => {
  const root = t.testdir({});
  const fs = new FsRecorder();
  const d = deliverer({ fs });
  const user: MailUser = { name: 'alice', quotaBytes: 150 };
  const message = Buffer.from(`${'q'.repeat(99)}\n`); // 100 bytes stored
  t.ok((await d.deliver({ recipients: [user], content: message }, resolver(root, fs)))[0]?.ok);
  const dir = join(root, 'alice');
  t.equal(readFileSync(join(dir, 'maildirsize'), 'latin1'), '150S\n0 0\n100 1\n', 'delta appended');
  fs.reset();
  const [refused] = await d.deliver({ recipients: [user], content: message }, resolver(root, fs));
  t.equal(failure(refused)?.kind, 'quota');
  t.equal(ls(join(dir, 'new')).length, 1, 'nothing new');
  t.same(ls(join(dir, 'tmp')), []);
  const [small] = await d.deliver({ recipients: [user], content: Buffer.from('hello\n') }, resolver(root, fs));
  t.ok(small?.ok, 'a message that fits is still accepted');
  const [full] = await d.deliver({ recipients: [{ name: 'alice', quotaBytes: 106 }], content: Buffer.from('x\n') }, resolver(root, fs));
  t.equal(failure(full)?.kind, 'quota', 'limits changed: recalculated, then refused');
  fs.reset();
  const [early] = await d.deliver({ recipients: [{ name: 'alice', quotaBytes: 106 }], content: Buffer.from('x\n') }, resolver(root, fs));
  t.equal(failure(early)?.kind, 'quota', 'a user already full is refused');
  t.equal(fs.ops('open', /\/tmp\//).length, 0, 'before any temporary file is made');
});

t.test('quota: the configured default, and message counts', async (t) => {
  const root = t.testdir({});
  const d = deliverer({ defaultQuotaBytes: 10 });
  t.equal(failure((await d.deliver({ recipients: [alice], content: Buffer.from('0123456789AB\n') }, resolver(root)))[0])?.kind, 'quota');
  t.ok((await d.deliver({ recipients: [{ name: 'alice', quotaBytes: 0 }], content: Buffer.from('0123456789AB\n') }, resolver(root)))[0]?.ok, '0 is unlimited');
  const counted = deliverer({ defaultQuotaMessages: 2 });
  const outcomes = [];
  for (let i = 0; i < 3; i++) outcomes.push(...(await counted.deliver({ recipients: [bob], content: Buffer.from('m\n') }, resolver(root))));
  t.same(outcomes.map((o) => o.ok), [true, true, false]);
});

t.test('a quota refusal for one recipient does not stop the others', async (t) => {
  const root = t.testdir({});
  const outcomes = await deliverer().deliver(
    { recipients: [{ name: 'alice', quotaBytes: 5 }, bob], content: Buffer.from('too big for alice\n') },
    resolver(root),
  );
  t.equal(failure(outcomes[0])?.kind, 'quota');
  t.ok(outcomes[1]?.ok);
  assertNoFiles(t, join(root, 'alice'), 'alice');
});

t.test('stats count deliveries and fsyncs', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const stats = createDeliveryCounters();
  const d = deliverer({ stats });
  await d.deliver({ recipients: [alice], content: Buffer.from('x\n') }, resolver(root));
  t.same(stats, { delivered: 1, failed: 0, fsyncs: 2, fileFsyncs: 1, dirFsyncs: 1 });
  await d.deliver({ recipients: [alice], content: Buffer.from('x\n'), maxBytes: 1 }, resolver(root));
  t.equal(stats.failed, 1);
  t.equal(d.stats, stats, 'the shared object');
});

t.test('an existing file with the same name is never overwritten', async (t) => {
  const root = t.testdir({ alice: { cur: {}, new: {}, tmp: {} } });
  const fs = new FsRecorder();
  fs.fail({ op: 'open', path: /\/tmp\//, code: 'EEXIST', times: 1 });
  const [outcome] = await deliverer({ fs }).deliver({ recipients: [alice], content: Buffer.from('x\n') }, resolver(root, fs));
  t.ok(outcome?.ok, 'a fresh name is tried');
  t.equal(fs.ops('open', /\/tmp\//).length, 2);
});

t.test('concurrent deliveries to one user share one folder check; a later delivery checks again', async (t) => {
  const root = t.testdir({});
  const d = deliverer();
  const checks: string[] = [];
  const counting: FolderResolver = async (user) => {
    checks.push(user.name);
    return resolver(root)(user);
  };
  // Ten deliveries to alice and one to bob, all started before any check ends.
  const burst = await Promise.all([
    ...Array.from({ length: 10 }, (_, i) => d.deliver({ recipients: [alice], content: Buffer.from(`Subject: ${i}\n\nx\n`) }, counting)),
    d.deliver({ recipients: [bob], content: Buffer.from('Subject: b\n\nx\n') }, counting),
  ]);
  for (const [outcome] of burst) okId(t, outcome);
  t.same(checks.sort(), ['alice', 'bob'], 'one check per user for the whole burst');
  t.equal(ls(join(root, 'alice', 'new')).length, 10, 'every message delivered');

  const [later] = await d.deliver({ recipients: [alice], content: Buffer.from('Subject: later\n\nx\n') }, counting);
  okId(t, later);
  t.same(checks.filter((c) => c === 'alice'), ['alice', 'alice'], 'a finished check is not reused');

  // A failed check is not kept either: the next delivery asks again and succeeds.
  let fail = true;
  const flaky: FolderResolver = async (user) => {
    checks.push(`flaky:${user.name}`);
    if (fail) throw new StorageError('temporary', 'check failed');
    return resolver(root)(user);
  };
  const failed = await Promise.all([1, 2].map(() => d.deliver({ recipients: [carol], content: Buffer.from('x\n') }, flaky)));
  t.same(failed.map(([o]) => failure(o)?.kind), ['temporary', 'temporary'], 'both deliveries of the burst see the failure');
  fail = false;
  const [retry] = await d.deliver({ recipients: [carol], content: Buffer.from('x\n') }, flaky);
  okId(t, retry);
  t.same(checks.filter((c) => c.startsWith('flaky:')), ['flaky:carol', 'flaky:carol'], 'one check for the burst, a new one after it failed');
});
