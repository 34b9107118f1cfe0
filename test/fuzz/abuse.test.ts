/**
 * Abuse checks (issue 6, DESIGN invariant 4): hostile login names and
 * recipient forms never make the store touch a path outside the root, a
 * users file with hostile names is refused, and a Maildir planted with
 * symlinks (a message file, a user folder, cur/, .Trash pointing out of
 * the root) is refused or skipped, never followed out. STLS/STARTTLS
 * injection has its own tests (test/pop3/commands/stls.test.ts,
 * test/smtp/server.test.ts).
 */
import t, { type Test } from 'tap';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.ts';
import { isStrictlyInside } from '../../src/storage/maildir/layout.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import { createPop3Server } from '../../src/pop3/server.ts';
import { createSmtpServer } from '../../src/smtp/server.ts';
import type { MailUser } from '../../src/storage/store.ts';
import { StorageError } from '../../src/errors.ts';
import { FsRecorder } from '../helpers/fs-recorder.ts';
import { LineClient } from '../helpers/pop3-client.ts';
import { SmtpTestClient } from '../helpers/smtp-client.ts';

const USERS = [
  { name: 'alice', password: '{PLAIN}secret' },
  { name: 'bob', password: '{PLAIN}hunter2' },
  { name: 'carol@example.org', password: '{PLAIN}carol' },
];
const SECRET = 'Subject: outside\n\nTOP SECRET bytes from outside the root\n';

/** A root, a sibling folder outside it holding a secret, and a store recording every path it touches. */
async function setup(t: Test) {
  const base = t.testdir({ outside: { 'secret.eml': SECRET, cur: {}, new: {}, tmp: {} } });
  const root = join(base, 'mail');
  const outside = join(base, 'outside');
  await mkdir(root);
  const fs = new FsRecorder();
  const store = await MaildirStore.open({ root, hostname: 'abuse.test', fs, cache: { isPersistent: false } });
  const users = UserDatabase.fromEntries(USERS, { localDomains: ['example.org'], dummyHash: '{PLAIN}dummy' });
  const deliver = async (name: string, content: string): Promise<void> => {
    const [outcome] = await store.deliver({ recipients: [users.lookup(name) as MailUser], content: Buffer.from(content) });
    if (outcome === undefined || !outcome.ok) throw new Error(`setup delivery to ${name} failed`);
  };
  const pop3 = createPop3Server({ store, users, hostname: 'pop.abuse.test', throttle: new LoginThrottle({ baseDelayMs: 0 }), limits: { maxAuthFailures: 100, maxBadCommands: 100 } });
  const { port } = await pop3.listen(0, '127.0.0.1');
  t.teardown(async () => {
    await pop3.close();
    await store.close();
  });
  /** Every path the store opened, created, moved or listed, outside the root. */
  const escapes = (): string[] => {
    const real = resolve(root);
    return (['open', 'mkdir', 'readdir', 'readdirWithTypes', 'rename', 'link', 'unlink', 'rmdir', 'stat', 'fsyncDir'] as const)
      .flatMap((op) => fs.ops(op))
      .flatMap((c) => [c.path, ...(c.to === undefined ? [] : [c.to])])
      .filter((p) => resolve(p) !== real && !isStrictlyInside(real, resolve(p)));
  };
  return { base, root, outside, fs, store, users, deliver, port, escapes };
}

async function pop3Session(port: number): Promise<LineClient> {
  const client = await LineClient.connect(port);
  await client.expect(/^\+OK /);
  return client;
}

const HOSTILE_LOGINS = [
  '../../etc', '../../../../../../etc/passwd', '..', '.', '/etc/passwd', 'alice/../bob', 'alice/../../outside', '../outside',
  '%2e%2e%2f%2e%2e', '..\\..\\etc', 'alice\u0000', '.Trash', 'alice/.Trash', 'carol@../../etc', '../../etc@example.org',
  'carol@example.org/../../outside', '~root', '$HOME', 'alice@', '@example.org', 'a'.repeat(250),
];

t.test('POP3: hostile USER / AUTH PLAIN names never reach a path outside the root', async (t) => {
  const s = await setup(t);
  await s.deliver('alice', 'Subject: a\n\nhello\n');
  const client = await pop3Session(s.port);
  for (const login of HOSTILE_LOGINS) {
    const user = await client.command(`USER ${login}`, /^[+-]/);
    if (user.startsWith('+OK')) await client.command('PASS secret', /^-ERR/);
    const plain = Buffer.from(`\0${login}\0secret`).toString('base64');
    await client.command(`AUTH PLAIN ${plain}`, /^-ERR/);
  }
  await client.command('QUIT', /^\+OK/);
  await client.closed();
  t.same(s.escapes(), [], 'no path outside the root was touched');
  t.same((await readdir(s.root)).sort(), ['alice'], 'no folder was created for a hostile name');
});

t.test('SMTP: hostile RCPT forms never create or open a path outside the root', async (t) => {
  const s = await setup(t);
  const smtp = createSmtpServer({ store: s.store, users: s.users, localDomains: ['example.org'], hostname: 'mx.abuse.test', reverseLookup: false, limits: { maxErrors: 1000 } });
  const address = await smtp.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error('expected TCP');
  t.teardown(() => smtp.close());
  const client = await SmtpTestClient.connect(address.port);
  await client.command('EHLO c.example');
  const hostile = [
    ...HOSTILE_LOGINS.map((l) => `${l}@example.org`), '"../../etc"@example.org', '"alice/../../outside"@example.org',
    'alice%outside@example.org', 'outside!alice@example.org', '"alice@evil.example"@example.org',
    'alice@evil.example', 'alice@example.org.evil.example', 'alice@[127.0.0.1]',
  ];
  let accepted = 0;
  for (const rcpt of hostile) {
    await client.command('RSET');
    await client.command('MAIL FROM:<x@c.example>');
    const reply = await client.command(`RCPT TO:<${rcpt}>`);
    if (reply.code === 250) {
      accepted++;
      t.fail(`accepted ${rcpt}`);
    }
  }
  // One good message so the delivery path ran too.
  await client.command('RSET');
  await client.command('MAIL FROM:<x@c.example>');
  t.match(await client.command('RCPT TO:<bob@example.org>'), { code: 250 });
  await client.command('DATA');
  t.match(await client.command('Subject: ok\r\n\r\nfine\r\n.'), { code: 250 });
  await client.command('QUIT');
  client.destroy();
  t.equal(accepted, 0, 'no hostile recipient accepted');
  t.same(s.escapes(), [], 'no path outside the root was touched');
  t.same((await readdir(s.root)).sort(), ['bob'], 'only the real recipient got a folder');
  t.same((await readdir(s.outside)).sort(), ['cur', 'new', 'secret.eml', 'tmp'], 'outside untouched');
});

t.test('a users file with hostile names is refused whole, naming the lines', async (t) => {
  const dir = t.testdir({});
  const hostile = ['../../etc', '..', '.', 'a/b', 'a\\b', 'a\u0000b', 'a\u001bb', '.hidden', 'x@..', '..@x', 'a@b@c', 'a b', 'a\u0085b'];
  for (const name of hostile) {
    const file = join(dir, `passwd-${hostile.indexOf(name)}`);
    await writeFile(file, `alice:{PLAIN}secret\n${name}:{PLAIN}pw\n`);
    const error = await UserDatabase.load({ file, dummyHash: '{PLAIN}d' }).then(
      (db) => {
        void db.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    t.ok(error !== undefined && /line 2/.test(error.message), `refused ${JSON.stringify(name)}: ${error?.message ?? 'accepted'}`);
  }
  // A home outside the root is refused where it would be used: the layout (%h) check.
  const { resolveUserDir } = await import('../../src/storage/maildir/layout.ts');
  for (const home of ['/etc', '/srv/mail/../etc', '/srv/mailx/alice']) {
    let error: unknown;
    try {
      resolveUserDir('/srv/mail', '%h', { name: 'alice', home });
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof StorageError && error.kind === 'invalid-name', `home ${home} refused`);
  }
});

t.test('Maildir symlinks: a message file pointing outside is skipped, never read', async (t) => {
  const s = await setup(t);
  await s.deliver('alice', 'Subject: real\n\nreal message\n');
  await symlink(join(s.outside, 'secret.eml'), join(s.root, 'alice', 'cur', '1700000000.M1P1Q1.evil:2,'));
  await symlink(join(s.outside, 'secret.eml'), join(s.root, 'alice', 'new', '1700000001.M1P1Q1.evil,S=60,W=62'));
  const client = await pop3Session(s.port);
  await client.command('USER alice', /^\+OK/);
  await client.command('PASS secret', /^\+OK/);
  t.match(await client.command('STAT', /^\+OK/), /^\+OK 1 /, 'only the real message is listed');
  await client.command('RETR 1', /^\+OK/);
  const body = (await client.body()).toString();
  t.notMatch(body, /TOP SECRET/);
  t.match(await client.command('RETR 2', /^-ERR/), /^-ERR/);
  await client.command('DELE 1', /^\+OK/);
  await client.command('QUIT', /^\+OK/);
  await client.closed();
  t.equal(await readFile(join(s.outside, 'secret.eml'), 'utf8'), SECRET, 'the outside file is untouched');
  t.same(s.escapes(), [], 'no path outside the root was touched');
});

t.test('Maildir symlinks: a user folder, cur/ or .Trash pointing outside is refused, never followed', async (t) => {
  const s = await setup(t);
  // bob's whole folder is a link out of the root.
  await symlink(s.outside, join(s.root, 'bob'));
  let client = await pop3Session(s.port);
  await client.command('USER bob', /^\+OK/);
  t.match(await client.command('PASS hunter2', /^-ERR/), /^-ERR/, 'login to a symlinked-out folder refused');
  await client.command('QUIT', /^\+OK/);
  const outcome = await s.store.deliver({ recipients: [s.users.lookup('bob') as MailUser], content: Buffer.from('Subject: x\n\nx\n') });
  t.notOk(outcome[0]?.ok, 'delivery into a symlinked-out folder refused');

  // carol's cur/ is a link out of the root.
  await s.deliver('carol@example.org', 'Subject: c\n\nc\n');
  const carolCur = join(s.root, 'carol@example.org', 'cur');
  await writeFile(join(s.outside, 'cur', '1700000002.M1P1Q1.out:2,'), SECRET);
  const { rm } = await import('node:fs/promises');
  await rm(carolCur, { recursive: true });
  await symlink(join(s.outside, 'cur'), carolCur);
  client = await pop3Session(s.port);
  await client.command('USER carol@example.org', /^\+OK/);
  t.match(await client.command('PASS carol', /^-ERR/), /^-ERR/, 'login with cur/ linked out of the root refused');
  await client.command('QUIT', /^\+OK/);

  // alice's .Trash is a link out of the root: a trash-mode QUIT must not move mail out there.
  await s.deliver('alice', 'Subject: a\n\na\n');
  await symlink(s.outside, join(s.root, 'alice', '.Trash'));
  client = await pop3Session(s.port);
  await client.command('USER alice', /^\+OK/);
  const pass = await client.command('PASS secret', /^[+-]/);
  if (pass.startsWith('+OK')) {
    await client.command('DELE 1', /^\+OK/);
    await client.command('QUIT', /^[+-]/);
  } else {
    await client.command('QUIT', /^\+OK/);
  }
  await client.closed();
  t.same((await readdir(join(s.outside, 'cur'))).sort(), ['1700000002.M1P1Q1.out:2,'], 'nothing moved into the outside folder through .Trash');
  t.same((await readdir(join(s.outside, 'new'))).sort(), [], 'nothing delivered outside');
  t.same(s.escapes(), [], 'no path outside the root was touched');
});

t.test('Maildir symlinks: a maildirsize pointing outside is never appended to', async (t) => {
  const base = t.testdir({ outside: { target: '1000000S,100C\n0 0\n' }, mail: {} });
  const root = join(base, 'mail');
  const target = join(base, 'outside', 'target');
  const store = await MaildirStore.open({ root, hostname: 'abuse.test', cache: { isPersistent: false } });
  t.teardown(() => store.close());
  const alice: MailUser = { name: 'alice', quotaBytes: 1_000_000, quotaMessages: 100 };
  const first = await store.deliver({ recipients: [alice], content: Buffer.from('Subject: 1\n\none\n') });
  t.ok(first[0]?.ok, 'first delivery (makes the Maildir)');
  const { rm } = await import('node:fs/promises');
  await rm(join(root, 'alice', 'maildirsize'), { force: true });
  await symlink(target, join(root, 'alice', 'maildirsize'));
  const outcome = await store.deliver({ recipients: [alice], content: Buffer.from('Subject: 2\n\ntwo\n') });
  t.ok(outcome[0]?.ok, 'the message itself is delivered');
  t.equal(await readFile(target, 'utf8'), '1000000S,100C\n0 0\n', 'the outside file did not grow');
});
