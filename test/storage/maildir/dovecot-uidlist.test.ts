import t from 'tap';
import * as path from 'node:path';
import { cpSync, readFileSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import {
  DovecotUidlistReader,
  dovecotUidl,
  parseDovecotUidlist,
} from '../../../src/storage/maildir/dovecot-uidlist.js';
import { scanMaildrop } from '../../../src/storage/maildir/scan.js';
import { maildirPaths } from '../../../src/storage/maildir/layout.js';
import { nodeFs } from '../../../src/storage/maildir/fs.js';
import { FsRecorder } from '../../helpers/fs-recorder.js';
import { FIXTURES_DIR } from '../../helpers/maildir-tree.js';

const FIXTURE = path.join(FIXTURES_DIR, 'dovecot-uidlist');
interface Expected {
  sessions: { pop3_uidl_format: string; uidl: string[]; list: string[] }[];
}
const expected = JSON.parse(readFileSync(path.join(FIXTURE, 'expected.json'), 'utf8')) as Expected;
const dovecotAnswer = expected.sessions[1];

t.test('the uidlist Dovecot wrote parses', async (t) => {
  const list = parseDovecotUidlist(readFileSync(path.join(FIXTURE, 'tree', 'dovecot-uidlist'), 'utf8'));
  t.ok(list);
  if (list === undefined) return;
  t.equal(list.version, 3);
  t.equal(list.nextUid, 6);
  t.equal(list.records.size, 5);
  t.equal(list.badLines, 0);
  const second = list.records.get('1700000002.M200000P1000Q2.fixture,S=968');
  t.equal(second?.uid, 2);
  t.same(second?.extensions, { W: '968', P: '' });
});

t.test("Dovecot's own UIDL answers are reproduced", async (t) => {
  t.equal(dovecotAnswer?.pop3_uidl_format, '%08Xu%08Xv');
  const list = parseDovecotUidlist(readFileSync(path.join(FIXTURE, 'tree', 'dovecot-uidlist'), 'utf8'));
  if (list === undefined) return t.fail('no list');
  const byUid = [...list.records.values()].sort((a, b) => a.uid - b.uid);
  t.same(
    byUid.map((r, i) => `${i + 1} ${dovecotUidl(list, r)}`),
    dovecotAnswer?.uidl,
  );
});

t.test('our scan of the tree lists the same messages, order and sizes as Dovecot', async (t) => {
  const dir = t.testdir();
  cpSync(path.join(FIXTURE, 'tree'), dir, { recursive: true });
  const { listing } = await scanMaildrop(maildirPaths(dir), 'maildir', { fs: nodeFs });
  // One deliberate difference: message 5 (no-final-newline.eml) has no line
  // end at the end; Dovecot adds the CRLF on RETR but leaves it out of LIST.
  // DESIGN "Wire size" (invariant 5) counts it, so LIST equals what RETR sends.
  const ours = listing.entries.map((e, i) => `${i + 1} ${e.size - (e.name.includes('Q5.') ? 2 : 0)}`);
  t.same(ours, dovecotAnswer?.list);
  const list = await new DovecotUidlistReader(nodeFs).read(path.join(dir, 'dovecot-uidlist'));
  if (list === undefined) return t.fail('no list');
  t.same(
    listing.entries.map((e, i) => {
      const record = list.records.get(e.base);
      return `${i + 1} ${record === undefined ? e.uidl : dovecotUidl(list, record)}`;
    }),
    dovecotAnswer?.uidl,
  );
});

t.test('fields, versions and damage', async (t) => {
  const v3 = parseDovecotUidlist(
    [
      '3 V1234 N10 G0123',
      '1 Psaved-uidl W100 :a.b.c:2,S',
      '2 :has space in name',
      '3 P :x',
      '4 Pbad\u0001uidl :d',
      '5 P',
      'x :bad uid',
      '0 :uid zero',
      '6 O4 G1f :e',
      '7 :../escape/x',
      '',
    ].join('\n'),
  );
  if (v3 === undefined) return t.fail('v3');
  t.equal(v3.records.get('a.b.c')?.extensions['P'], 'saved-uidl', 'info stripped from the name');
  t.equal(dovecotUidl(v3, v3.records.get('a.b.c') as never), 'saved-uidl');
  t.equal(v3.records.get('has space in name')?.uid, 2);
  t.equal(v3.records.get('x')?.extensions['P'], '', 'P then the name');
  t.equal(dovecotUidl(v3, v3.records.get('x') as never), 'x', 'empty P: the base name');
  t.equal(dovecotUidl(v3, v3.records.get('d') as never), '00000004000004d2', 'invalid saved UIDL: UID form');
  t.equal(dovecotUidl(v3, v3.records.get('e') as never), '00000006000004d2');
  t.equal(v3.badLines, 4, 'no name, bad uid, uid 0, a path');

  const v1 = parseDovecotUidlist('1 1700000000 3\n1 1.M1P1.h:2,S\n2 2.M1P1.h\n');
  if (v1 === undefined) return t.fail('v1');
  t.equal(v1.uidValidity, 1700000000);
  t.equal(dovecotUidl(v1, v1.records.get('2.M1P1.h') as never), '000000026553f100');

  for (const bad of ['', 'garbage', '4 V1 N2', '3 N2', '3 V0 N2', '3 Vx N2', '1 abc 2'])
    t.equal(parseDovecotUidlist(bad), undefined, JSON.stringify(bad));
});

t.test('the reader re-parses only when the file changes, and never follows a symlink', async (t) => {
  const dir = t.testdir({ outside: '3 V1 N2\n1 :secret\n' });
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, '3 V5 N2\n1 :a\n');
  const fs = new FsRecorder();
  const reader = new DovecotUidlistReader(fs);
  const first = await reader.read(file);
  t.equal(first?.records.size, 1);
  t.equal(await reader.read(file), first, 'same parsed object while unchanged');
  t.equal(fs.ops('read').length, 1, 'read once');
  appendFileSync(file, '2 :b\n');
  t.equal((await reader.read(file))?.records.size, 2, 'append seen');
  t.equal(await reader.read(path.join(dir, 'missing')), undefined);
  const link = path.join(dir, 'linked');
  symlinkSync(path.join(dir, 'outside'), link);
  t.equal(await reader.read(link), undefined);
});
