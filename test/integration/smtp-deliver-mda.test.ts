/**
 * `maildird deliver` as the delivery command of real mail software:
 *
 * - fetchmail's MDA (`mda ".../bin/maildird deliver --config FILE -f %F %T"`):
 *   fetchmail takes alice's mail from a maildird POP3 server and hands each
 *   message to `maildird deliver`, which stores it for bob; an MDA failure
 *   (67, unknown user) leaves the mail on the server.
 * - Postfix's pipe(8) transport (a private instance, ../shared/PEERS.md):
 *   virtual mailboxes of example.org delivered by `maildird deliver -f
 *   ${sender} -a ${recipient}`, one recipient per call, so Postfix acts on
 *   each exit code: 0 sent, 67 bounced (user unknown), 73 bounced (over
 *   quota), 75 deferred (a mailbox maildird cannot write).
 *
 * Postfix's local(8) and its `mailbox_command` need recipients that are
 * Unix accounts; maildird's users are virtual, so the pipe transport is the
 * fitting hook. pipe(8) refuses to run commands as root (or as the Postfix
 * owner): the command runs as `nobody` on a tree under the system temp
 * folder that nobody owns. Needs root and the postfix package.
 *
 * Skipped with the reason when a program is missing, unless
 * MAILDIRD_REQUIRE_INTEROP=1.
 */
import t from 'tap';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserDatabase } from '../../src/auth/user-db.js';
import { createPop3Server } from '../../src/pop3/server.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { BIN, runDeliver } from '../helpers/smtp-deliver-run.js';
import { delivered, splitTrace } from '../helpers/smtp-setup.js';
import { missingClient, REQUIRE_INTEROP, run } from '../helpers/smtp-interop.js';
import { POSTFIX_SERVICES, postfixMainCf, readText, waitForText } from '../helpers/postfix.js';

const MESSAGES = fileURLToPath(new URL('../../fixtures/messages/', import.meta.url));
const skipFetchmail = await missingClient('fetchmail', ['--version']);

async function postfixReason(): Promise<string | false> {
  const missing = await missingClient('postconf', ['-d', 'mail_version']);
  if (missing !== false) return missing;
  if (process.getuid?.() !== 0 && !REQUIRE_INTEROP) return 'a private Postfix instance needs root (set MAILDIRD_REQUIRE_INTEROP=1 to fail instead)';
  return false;
}
const skipPostfix = await postfixReason();

/** A tree, its users file and a config naming both, as an operator would set up maildird. */
function setupTree(dir: string, users: readonly string[]): { root: string; config: string; passwd: string } {
  const root = join(dir, 'mail');
  mkdirSync(root);
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, `${users.join('\n')}\n`);
  const config = join(dir, 'maildird.json');
  writeFileSync(config, JSON.stringify({ root, users: passwd, domains: ['example.org'], hostname: 'mx.example.org' }));
  return { root, config, passwd };
}

/**
 * What fetchmail does to a message on its way to the MDA: it adds its own
 * Received header (after the Return-Path), hands over LF line ends with every
 * CR dropped, and ends a header-only message with a blank line. Undo that.
 */
function withoutFetchmail(text: string): string {
  return text.replace(/^Received: from localhost \[127\.0\.0\.1\]\n(?:\t.*\n)*/m, '').replace(/\n+$/, '');
}

t.test('fetchmail hands each message to maildird deliver; a failing MDA leaves the mail on the server', { skip: skipFetchmail }, async (t) => {
  const dir = t.testdir({});
  const { root, config, passwd } = setupTree(dir, ['alice:{PLAIN}secret', 'bob:{PLAIN}secret']);
  const names = readdirSync(MESSAGES).filter((n) => n.endsWith('.eml')).sort();
  for (const name of names) {
    const result = await runDeliver(['--config', config, '-f', 'sender@remote.example', 'alice'], readFileSync(join(MESSAGES, name)));
    t.equal(result.code, 0, `${name}: ${result.stderr}`);
  }
  const alice = (await delivered(root, 'alice')).map(([, bytes]) => bytes.toString('latin1'));
  t.equal(alice.length, names.length);

  const store = await MaildirStore.open({ root });
  const users = await UserDatabase.load({ file: passwd, domains: ['example.org'] });
  const pop3 = createPop3Server({ store, users });
  t.teardown(async () => {
    await pop3.close();
    await store.close();
    await users.close();
  });
  const { port } = await pop3.listen(0, '127.0.0.1');

  const fetchInto = async (local: string) => {
    const rc = join(dir, `fetchmailrc-${local}`);
    writeFileSync(
      rc,
      [
        'set no bouncemail',
        `set idfile "${join(dir, 'fetchids')}"`,
        `poll localhost service ${port} protocol pop3 auth password`,
        `  user "alice" there with password "secret" is "${local}" here`,
        '  nokeep fetchall sslproto ""',
        // fetchmail runs the MDA through sh; %F and %T arrive shell-quoted.
        // tap re-adds its loaders to NODE_OPTIONS of every child process: the MDA drops them.
        `  mda "env -u NODE_OPTIONS ${process.execPath} ${BIN} deliver --config ${config} -f %F %T"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return run('fetchmail', ['--nosyslog', '--nodetach', '-f', rc], { env: { HOME: dir, FETCHMAILHOME: dir } });
  };

  const refused = await fetchInto('nobody');
  // fetchmail exits 0 (the poll worked) and says what the MDA did, once per message.
  t.equal(refused.stderr.match(/maildird deliver: nobody: user unknown\nfetchmail: MDA returned nonzero status 67\n/g)?.length, names.length);
  t.equal(
    readdirSync(join(root, 'alice', 'new')).length + readdirSync(join(root, 'alice', 'cur')).length,
    names.length,
    'nothing was deleted from the server',
  );
  t.same(await delivered(root, 'bob'), []);

  const fetched = await fetchInto('bob');
  t.equal(fetched.code, 0, fetched.stderr);
  const bob = (await delivered(root, 'bob')).map(([, bytes]) => bytes.toString('latin1'));
  t.equal(bob.length, names.length, 'every message delivered to bob');
  t.same(readdirSync(join(root, 'alice', 'new')), [], 'and deleted from alice');
  const views: string[] = [];
  for (const text of bob) {
    // Ours first. A leading Return-Path (alice's, which fetchmail keeps on top) is kept, not doubled;
    // without one, ours comes from -f %F (fetchmail's idea of the sender).
    const ours = /^(?:Return-Path: <[^>\n]*>\n)?Received: by mx\.example\.org with local\n\tid [0-9A-F]{12} for <bob>; [^\n]+\n/.exec(text);
    t.ok(ours, 'our trace headers on top');
    const rest = text.slice(ours?.[0].length ?? 0);
    t.notOk(ours?.[0].startsWith('Return-Path:') === true && rest.startsWith('Return-Path:'), 'never two Return-Paths on top');
    views.push(withoutFetchmail(rest));
  }
  t.same(views.sort(), alice.map((m) => m.replace(/\r/g, '').replace(/\n+$/, '')).sort(), "bob's copies are alice's messages, as fetchmail passed them on");
});

const MASTER_CF = (bin: string, config: string, cwd: string) => `${POSTFIX_SERVICES}maildird  unix  -       n       n       -       -       pipe
  user=nobody directory=${cwd} argv=${process.execPath} ${bin} deliver --config ${config} -f \${sender} -a \${recipient}
`;

function mainCf(dir: string): string {
  return postfixMainCf(dir, 'maildird', 'maildird_destination_recipient_limit = 1\n');
}

t.test('Postfix delivers through maildird deliver (pipe transport): sent, bounced and deferred by exit code', { skip: skipPostfix }, async (t) => {
  // Under the system temp folder (Postfix's socket paths must stay short; nobody must reach it).
  const dir = mkdtempSync(join(tmpdir(), 'maildird-pfd-'));
  chmodSync(dir, 0o755);
  const nobody = Number((await run('id', ['-u', 'nobody'])).stdout.toString().trim());
  const nogroup = Number((await run('id', ['-g', 'nobody'])).stdout.toString().trim());
  const { root, config } = setupTree(dir, [
    'alice:{PLAIN}x',
    'bob:{PLAIN}x',
    'tiny:{PLAIN}x::::::userdb_quota_rule=*:storage=1K',
    'stuck:{PLAIN}x',
  ]);
  chownSync(root, nobody, nogroup);
  // stuck's Maildir belongs to root: nobody cannot write it, which must defer (75), not bounce.
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(root, 'stuck', sub), { recursive: true, mode: 0o700 });
  chmodSync(join(root, 'stuck'), 0o700);

  const conf = join(dir, 'conf');
  mkdirSync(conf);
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'data'));
  chownSync(join(dir, 'data'), Number((await run('id', ['-u', 'postfix'])).stdout.toString().trim()), 0);
  writeFileSync(join(conf, 'main.cf'), mainCf(dir));
  writeFileSync(join(conf, 'master.cf'), MASTER_CF(BIN, config, dir));
  t.teardown(async () => {
    await run('postfix', ['-c', conf, 'stop']);
    rmSync(dir, { recursive: true, force: true });
  });
  const start = await run('postfix', ['-c', conf, 'start']);
  if (start.code !== 0) {
    t.fail(`postfix did not start: ${start.stderr} ${readText(join(dir, 'maillog'))}`);
    return;
  }

  // Over tiny's 1 KiB quota; lines under Postfix's 998-octet limit so it does not fold them.
  const text = `${'x'.repeat(99)}\n`.repeat(30);
  const body = `Subject: via Postfix and maildird deliver\n\n${text}`;
  const rcpts = ['alice', 'bob+lists', 'nobody', 'tiny', 'stuck'].map((u) => `${u}@example.org`);
  const injected = await run('sendmail', ['-C', conf, '-f', 'sender@remote.example', '--', ...rcpts], { input: body });
  t.equal(injected.code, 0, injected.stderr);

  const log = await waitForText(dir, 'maillog', (log) =>
    rcpts.every((r) => new RegExp(`to=<${r.replace(/[+.]/g, '\\$&')}>.*status=(sent|bounced|deferred)`).test(log)),
  );
  const status = (rcpt: string): string =>
    new RegExp(`to=<${rcpt.replace(/[+.]/g, '\\$&')}>.*relay=maildird.*status=(\\w+) \\((.*)\\)$`, 'm').exec(log)?.slice(1).join(' ') ?? '';
  t.match(status('alice@example.org'), /^sent delivered via maildird service/);
  t.match(status('bob+lists@example.org'), /^sent delivered via maildird service/);
  t.match(status('nobody@example.org'), /^bounced .*user unknown.*maildird deliver: nobody@example\.org: user unknown/);
  t.match(status('tiny@example.org'), /^bounced .*maildird deliver: 5\.2\.2 Mailbox full/);
  t.match(status('stuck@example.org'), /^deferred .*maildird deliver: 4\.3\.0 /);

  for (const [user, rcpt] of [
    ['alice', 'alice@example.org'],
    ['bob', 'bob+lists@example.org'],
  ] as const) {
    const files = await delivered(root, user);
    t.equal(files.length, 1, `${user} has the message`);
    const trace = splitTrace(files[0]?.[1] ?? Buffer.alloc(0));
    t.equal(trace.returnPath, 'Return-Path: <sender@remote.example>');
    t.match(trace.received, new RegExp(`^Received: by mx\\.example\\.org with local\\n\\tid [0-9A-F]{12} for <${rcpt.replace(/[+.]/g, '\\$&')}>; `));
    t.match(trace.rest, /^Received: by relay\.test \(Postfix/, "Postfix's own trace follows ours");
    t.match(trace.rest, /\nSubject: via Postfix and maildird deliver\n/);
    t.ok(trace.rest.endsWith(`\n\n${text}`), 'the body arrived whole');
  }
  t.same(await delivered(root, 'tiny'), [], 'over quota: nothing stored');
  t.same(readdirSync(join(root, 'stuck', 'new')), []);
});
