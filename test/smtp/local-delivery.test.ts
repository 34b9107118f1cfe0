import t, { type Test } from 'tap';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { UserDatabase } from '../../src/auth/user-db.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { toStoredBuffer } from '../../src/storage/wire.js';
import { AliasTable } from '../../src/smtp/aliases.js';
import {
  deliverLocal,
  EX_CANTCREAT,
  EX_DATAERR,
  EX_NOUSER,
  EX_OK,
  EX_TEMPFAIL,
  EX_USAGE,
  type LocalDeliveryOptions,
} from '../../src/smtp/local-delivery.js';
import { FsRecorder } from '../helpers/fs-recorder.js';
import { delivered, DOMAIN, splitTrace } from '../helpers/smtp-setup.js';

const MESSAGES = fileURLToPath(new URL('../../fixtures/messages/', import.meta.url));

function users(): UserDatabase {
  return UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}a' },
      { name: 'bob', password: '{PLAIN}b' },
      { name: 'tiny', password: '{PLAIN}t', extraFields: [{ key: 'userdb_quota_rule', value: '*:storage=1K' }] },
    ],
    { localDomains: [DOMAIN] },
  );
}

async function setup(t: Test, fs?: FsRecorder) {
  const root = t.testdir({});
  const store = await MaildirStore.open({ root, ...(fs === undefined ? {} : { fs }) });
  t.teardown(() => store.close());
  const base = { store, users: users(), localDomains: [DOMAIN], hostname: 'host.example.org' };
  const run = (recipients: string[], input: string | Buffer | Readable, extra: Partial<LocalDeliveryOptions> = {}) =>
    deliverLocal({
      ...base,
      recipients,
      input: input instanceof Readable ? input : Readable.from([typeof input === 'string' ? Buffer.from(input, 'latin1') : input]),
      ...extra,
    });
  return { root, store, run };
}

async function allFiles(root: string, user: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['tmp', 'new', 'cur']) {
    try {
      out.push(...(await readdir(join(root, user, sub))).map((n) => `${sub}/${n}`));
    } catch {
      // no folder
    }
  }
  return out;
}

t.test('every fixture message is stored byte-correct (LF form) after the trace headers', async (t) => {
  const { root, run } = await setup(t);
  const names = readdirSync(MESSAGES).filter((n) => n.endsWith('.eml')).sort();
  for (const name of names) {
    const result = await run(['alice'], createReadStream(join(MESSAGES, name), { highWaterMark: 7 }), { sender: 'x@remote.example' });
    t.equal(result.exitCode, EX_OK, `${name}: ${result.message}`);
  }
  const files = await delivered(root, 'alice');
  t.equal(files.length, names.length);
  const stored = new Set(files.map(([, b]) => splitTrace(b).rest));
  for (const name of names) {
    t.ok(stored.has(toStoredBuffer(readFileSync(join(MESSAGES, name))).toString('latin1')), `${name} byte-correct`);
  }
  const first = splitTrace(files[0]?.[1] ?? Buffer.alloc(0));
  t.equal(first.returnPath, 'Return-Path: <x@remote.example>');
  t.match(first.received, /^Received: by host\.example\.org with local\n\tid [0-9A-F]{12} for <alice>; .* \+0000$/);
});

t.test('recipients: names, addresses, aliases, subaddresses; one unknown means nothing is delivered', async (t) => {
  const { root, run } = await setup(t);
  const aliases = new AliasTable('team: alice, bob\n');
  const ok = await run(['alice', 'team@example.org', 'bob+lists@example.org'], 'Subject: x\n\nhi\n', { aliases });
  t.equal(ok.exitCode, EX_OK);
  t.match(ok.message, /^delivered to alice, bob as [0-9A-F]{12}$/);
  t.equal((await delivered(root, 'alice')).length, 1, 'one copy per user');
  t.equal((await delivered(root, 'bob')).length, 1);

  const unknown = await run(['alice', 'nobody'], 'Subject: y\n\nhi\n');
  t.same([unknown.exitCode, unknown.message], [EX_NOUSER, 'nobody: user unknown']);
  t.equal((await delivered(root, 'alice')).length, 1, 'alice got nothing new');
  t.equal((await run(['someone@remote.example'], 'x\n')).exitCode, EX_NOUSER, 'never a relay');
  t.equal((await run([], 'x\n')).exitCode, EX_USAGE);
});

t.test('an mbox From_ line is removed and gives the sender; an MTA Return-Path is kept, not doubled', async (t) => {
  const { root, run } = await setup(t);
  t.equal((await run(['alice'], 'From sender@remote.example Tue Jul  1 10:00:00 2025\nSubject: a\n\nbody\n')).exitCode, EX_OK);
  t.equal((await run(['bob'], 'Return-Path: <mta@remote.example>\nSubject: b\n\nbody\n')).exitCode, EX_OK);
  t.equal(
    (await run(['bob'], 'From MAILER-DAEMON Tue Jul  1 10:00:00 2025\nReturn-Path: <>\nSubject: c\n\nbody\n', {})).exitCode,
    EX_OK,
  );
  const alice = splitTrace((await delivered(root, 'alice'))[0]?.[1] ?? Buffer.alloc(0));
  t.equal(alice.returnPath, 'Return-Path: <sender@remote.example>');
  t.equal(alice.rest, 'Subject: a\n\nbody\n');
  const bob = (await delivered(root, 'bob')).map(([, b]) => b.toString('latin1'));
  for (const text of bob) {
    t.equal(text.match(/^Return-Path:/gm)?.length, 1, 'one Return-Path');
    t.match(text, /^Received: by host\.example\.org with local\n/, 'ours comes first, before the kept Return-Path');
  }
  t.ok(bob.some((text) => text.includes('\nReturn-Path: <mta@remote.example>\nSubject: b\n')));
});

t.test('refusals: too large and mail loops (65), over quota (73, or 75), nothing written', async (t) => {
  const { root, run } = await setup(t);
  const big = await run(['alice'], `Subject: big\n\n${'x'.repeat(100)}\n`, { maxBytes: 50 });
  t.same([big.exitCode, big.message], [EX_DATAERR, '5.3.4 Message size exceeds fixed maximum message size']);
  const loop = await run(['alice'], 'Received: a\nReceived: b\nReceived: c\n\nx\n', { maxHops: 2 });
  t.equal(loop.exitCode, EX_DATAERR);
  const full = `Subject: full\n\n${'x'.repeat(3000)}\n`;
  t.equal((await run(['tiny'], full)).exitCode, EX_CANTCREAT);
  t.equal((await run(['tiny'], full, { quotaIsTemporary: true })).exitCode, EX_TEMPFAIL);
  t.same(await allFiles(root, 'alice'), []);
  t.same(await allFiles(root, 'tiny'), []);
});

t.test('disk full and I/O errors: 75, no partial file', async (t) => {
  const fs = new FsRecorder();
  const { root, run } = await setup(t, fs);
  const stop = fs.fail({ op: 'write', path: /\/tmp\//, code: 'ENOSPC' });
  const result = await run(['alice'], 'Subject: x\n\nbody\n');
  t.same([result.exitCode, result.message], [EX_TEMPFAIL, '4.3.1 Insufficient system storage']);
  stop();
  t.same(await allFiles(root, 'alice'), []);
  const broken = Readable.from(
    (async function* () {
      yield Buffer.from('Subject: x\n\npartial');
      throw new Error('stdin went away');
    })(),
  );
  t.equal((await run(['alice'], broken)).exitCode, EX_TEMPFAIL, 'an input that fails is a temporary failure');
  t.same(await allFiles(root, 'alice'), [], 'and leaves nothing');
});
