/** `maildird check` through the built CLI on trees in temporary folders. */
import t from 'tap';
import { utimesSync } from 'node:fs';
import * as path from 'node:path';
import { formatReport } from '../../../src/cli/commands/check.js';
import { runCli } from '../../helpers/cli-run.js';

const MSG = 'From: a@example.org\nSubject: hi\n\nbody\n';

t.test('a clean tree: users, counts, bytes; exit 0', async (t) => {
  const root = t.testdir({
    alice: {
      cur: { [`1700000000.M1P1.host,S=${MSG.length}:2,S`]: MSG },
      new: { '1700000100.M2P1.host': MSG, '.keep': '' },
      tmp: { '.keep': '' },
      '.Trash': { cur: { '1690000000.M3P1.host:2,S': MSG }, new: {}, tmp: {} },
    },
    carol: { '1700000000.M4P1.host.eml': MSG, '.Trash': {} },
  });
  const result = await runCli(['check', '--root', root]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `maildird check: ${root} (layout %u)`);
  t.match(result.stdout, new RegExp(`alice +maildir +2 +1 +${2 * MSG.length} +1 \\(${MSG.length} bytes\\)`));
  t.match(result.stdout, new RegExp(`carol +flat +1 +0 +${MSG.length}`));
  t.match(result.stdout, `total: 2 users, 3 messages, ${3 * MSG.length} bytes`);
  t.match(result.stdout, /\nno problems found\n$/);
});

t.test('a broken tree: each problem on its own line; exit 1', async (t) => {
  const root = t.testdir({
    alice: {
      cur: { '1700000000.M1P1.host:2,S': MSG },
      new: { '1700000000.M1P1.host': MSG },
      tmp: { '1600000000.M9P9.host': 'half' },
      'maildird-batch.journal': '{"from":"a","to":"b"}\n',
    },
  });
  const old = new Date(Date.now() - 48 * 3600 * 1000);
  utimesSync(path.join(root, 'alice', 'tmp', '1600000000.M9P9.host'), old, old);
  const result = await runCli(['check'], { env: { MAILDIRD_ROOT: root } });
  t.equal(result.code, 1, result.stderr);
  t.match(result.stdout, /duplicate base name 1700000000\.M1P1\.host/);
  t.match(result.stdout, /stale tmp file alice\/tmp\/1600000000\.M9P9\.host: 4\d hours old/);
  t.match(result.stdout, /leftover batch journal alice\/maildird-batch\.journal/);
  t.match(result.stdout, /\n3 problems found\n$/);
});

t.test('--config gives the root and the layout', async (t) => {
  const dir = t.testdir({
    'm.json': JSON.stringify({ root: 'tree', layout: '%d/%n' }),
    tree: { 'example.org': { bob: { cur: {}, new: { '1700000000.M1P1.host': MSG }, tmp: {} } } },
  });
  const result = await runCli(['check', '--config', path.join(dir, 'm.json')]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /layout %d\/%n/);
  t.match(result.stdout, /example\.org\/bob +maildir +1 +1/);
});

t.test('a missing root is one line and exit 66', async (t) => {
  const dir = t.testdir({});
  const result = await runCli(['check', '--root', path.join(dir, 'nope')]);
  t.equal(result.code, 66);
  t.equal(result.stderr, `maildird: root ${path.join(dir, 'nope')}: not found\n`);
  t.equal(result.stdout, '');
});

t.test('formatReport: live locks are shown but are no problem', async (t) => {
  const { lines, problems } = formatReport(
    {
      root: '/r',
      users: [],
      totals: { users: 0, messages: 0, bytes: 0 },
      issues: [
        { kind: 'lock', path: 'a/maildird.lock', state: 'live', ageMs: 5000 },
        { kind: 'lock', path: 'b/maildird.lock', state: 'stale', ageMs: 500_000 },
        { kind: 'unparsable', path: 'c/cur/x', reason: 'a folder' },
        { kind: 'folder', path: 'd', reason: 'resolves outside the root (symbolic link)' },
      ],
    },
    '%u',
  );
  t.equal(problems, 3);
  const text = lines.join('\n');
  t.match(text, /in use:\n  lock a\/maildird\.lock, refreshed 5 s ago/);
  t.match(text, /stale lock b\/maildird\.lock, 500 s old/);
  t.match(text, /unparsable file c\/cur\/x: a folder/);
  t.match(text, /folder d: resolves outside the root/);
  t.match(text, /no user folders found/);
});
