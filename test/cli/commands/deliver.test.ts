/**
 * `maildird deliver` through the built CLI: one message on stdin into a
 * Maildir tree from a config file, byte-correct after the trace headers;
 * the sysexits codes an MTA acts on (67 unknown user, 73 over quota, 64 bad
 * flags, 75 broken setup), with one line on stderr and nothing written.
 */
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toStoredBuffer } from '../../../src/storage/wire.js';
import { runDeliver } from '../../helpers/smtp-deliver-run.js';
import { delivered, splitTrace } from '../../helpers/smtp-setup.js';

const MESSAGES = fileURLToPath(new URL('../../../fixtures/messages/', import.meta.url));

const PASSWD = [
  'alice:{PLAIN}a',
  'bob:{PLAIN}b',
  'tiny:{PLAIN}t::::::userdb_quota_rule=*:storage=1K',
  '',
].join('\n');

interface Tree {
  readonly dir: string;
  readonly root: string;
  readonly config: string;
}

function tree(t: Test, extra: Record<string, unknown> = {}): Tree {
  const dir = t.testdir({ mail: {}, passwd: PASSWD });
  const config = join(dir, 'maildird.json');
  writeFileSync(
    config,
    JSON.stringify({ root: 'mail', users: 'passwd', domains: ['example.org'], hostname: 'mx.example.org', ...extra }),
  );
  return { dir, root: join(dir, 'mail'), config };
}

function files(root: string, user: string): string[] {
  const out: string[] = [];
  for (const sub of ['tmp', 'new', 'cur']) {
    try {
      out.push(...readdirSync(join(root, user, sub)).map((n) => `${sub}/${n}`));
    } catch {
      // no folder yet
    }
  }
  return out;
}

t.test('every fixture arrives byte-correct (stored form) after Return-Path and Received; silent success', async (t) => {
  const { root, config } = tree(t);
  const names = readdirSync(MESSAGES).filter((n) => n.endsWith('.eml')).sort();
  const expected = new Set<string>();
  for (const name of names) {
    const bytes = readFileSync(join(MESSAGES, name));
    const result = await runDeliver(['--config', config, '-f', 'sender@remote.example', 'alice'], bytes);
    t.same([result.code, result.stdout, result.stderr], [0, '', ''], name);
    expected.add(toStoredBuffer(bytes).toString('latin1'));
  }
  const got = await delivered(root, 'alice');
  t.equal(got.length, names.length, 'one file per message, all in new/');
  for (const [file, bytes] of got) {
    // A fixture that starts with its own Return-Path keeps it and gets none added (an MTA put it there).
    const ownReturnPath = bytes.toString('latin1').startsWith('Received: ');
    const trace = ownReturnPath ? splitTrace(Buffer.concat([Buffer.from('Return-Path: <>\n'), bytes])) : splitTrace(bytes);
    if (!ownReturnPath) t.equal(trace.returnPath, 'Return-Path: <sender@remote.example>', file);
    t.match(trace.received, /^Received: by mx\.example\.org with local\n\tid [0-9A-F]{12} for <alice>; \w{3}, .* \+0000$/);
    t.ok(expected.delete(trace.rest), `${file} is one of the fixtures, byte for byte`);
    t.match(file, new RegExp(`,S=${bytes.length},W=\\d+`), 'the name carries the stored size');
  }
  t.equal(expected.size, 0, 'every fixture was found');
  t.same(files(root, 'alice').filter((f) => f.startsWith('tmp/')), [], 'nothing left in tmp/');
});

t.test('users and -a addresses together; -f "" is the null sender; flags from --root/--users without a config', async (t) => {
  const { dir, root } = tree(t);
  const result = await runDeliver(
    ['--root', join(dir, 'mail'), '--users', join(dir, 'passwd'), '-f', '', '-a', 'bob+lists@localhost', 'alice'],
    'Subject: both\n\nhi\n',
  );
  t.same([result.code, result.stderr], [0, '']);
  const alice = splitTrace((await delivered(root, 'alice'))[0]?.[1] ?? Buffer.alloc(0));
  const bob = splitTrace((await delivered(root, 'bob'))[0]?.[1] ?? Buffer.alloc(0));
  t.equal(alice.returnPath, 'Return-Path: <>');
  t.match(bob.received, /for <bob\+lists@localhost>;/, 'the address as given, in Received');
  t.equal(bob.rest, 'Subject: both\n\nhi\n');
  t.equal(alice.rest, 'Subject: both\n\nhi\n');
});

t.test('unknown user: 67, one line, nothing delivered to anyone', async (t) => {
  const { root, config } = tree(t);
  const result = await runDeliver(['--config', config, 'alice', 'nobody'], 'Subject: x\n\nbody\n');
  t.equal(result.code, 67);
  t.equal(result.stderr, 'maildird deliver: nobody: user unknown\n');
  t.equal(result.stdout, '');
  t.same(files(root, 'alice'), []);
  const remote = await runDeliver(['--config', config, '-a', 'someone@remote.example'], 'x\n');
  t.equal(remote.code, 67, 'a foreign address is unknown here, never relayed');
});

t.test('over quota: 73 (an operator must act), nothing written', async (t) => {
  const { root, config } = tree(t);
  const result = await runDeliver(['--config', config, 'tiny'], `Subject: full\n\n${'x'.repeat(3000)}\n`);
  t.equal(result.code, 73);
  t.equal(result.stderr, 'maildird deliver: 5.2.2 Mailbox full\n');
  t.same(files(root, 'tiny'), []);
});

t.test('too large for limits.maxMessageBytes: 65, nothing written', async (t) => {
  const { root, config } = tree(t, { limits: { maxMessageBytes: 100 } });
  const result = await runDeliver(['--config', config, 'alice'], `Subject: big\n\n${'x'.repeat(500)}\n`);
  t.equal(result.code, 65);
  t.match(result.stderr, /^maildird deliver: 5\.3\.4 .*\n$/);
  t.same(files(root, 'alice'), []);
});

t.test('bad flags: 64 with one line (unknown flag, -f without a value, no recipient)', async (t) => {
  const { config } = tree(t);
  const unknown = await runDeliver(['--config', config, '--bogus', 'alice'], 'x\n');
  t.equal(unknown.code, 64);
  t.match(unknown.stderr, /^maildird: Unknown argument: bogus\n$/);
  const noSender = await runDeliver(['--config', config, 'alice', '-f'], 'x\n');
  t.equal(noSender.code, 64);
  t.match(noSender.stderr, /^maildird: Not enough arguments following: f\n$/);
  const none = await runDeliver(['--config', config], 'x\n');
  t.equal(none.code, 64);
  t.equal(none.stderr, 'maildird deliver: name a user or give -a ADDRESS\n');
});

t.test('a broken setup is a temporary failure (75), so the MTA keeps the message', async (t) => {
  const { dir, config } = tree(t);
  const noRoot = await runDeliver(['--config', config, '--root', join(dir, 'missing'), 'alice'], 'x\n');
  t.equal(noRoot.code, 75);
  t.match(noRoot.stderr, /^maildird deliver: root .*missing: ENOENT\n$/);
  const noUsers = await runDeliver(['--config', config, '--users', join(dir, 'nope'), 'alice'], 'x\n');
  t.equal(noUsers.code, 75);
  t.match(noUsers.stderr, /^maildird deliver: cannot read the users file .*nope: ENOENT\n$/);
  writeFileSync(config, '{ "root": ');
  const badConfig = await runDeliver(['--config', config, 'alice'], 'x\n');
  t.equal(badConfig.code, 75);
  t.match(badConfig.stderr, /^maildird deliver: .*maildird\.json.*\n$/);
});

t.test('-a through the aliases file of the `aliases` key; a broken aliases file is a temporary failure (75)', async (t) => {
  const { dir, root, config } = tree(t, { aliases: 'aliases' });
  writeFileSync(join(dir, 'aliases'), 'team: alice, bob\n');
  const result = await runDeliver(['--config', config, '-a', 'team@example.org'], 'Subject: team\n\nhi\n');
  t.same([result.code, result.stderr], [0, '']);
  t.equal((await delivered(root, 'alice')).length, 1);
  t.equal((await delivered(root, 'bob')).length, 1);
  writeFileSync(join(dir, 'aliases'), 'team alice\n');
  const broken = await runDeliver(['--config', config, '-a', 'team@example.org'], 'x\n');
  t.equal(broken.code, 75);
  t.match(broken.stderr, /^maildird deliver: .*aliases line 1: expected "alias: target, \.\.\."\n$/);
  t.equal((await delivered(root, 'alice')).length, 1, 'nothing more delivered');
});
