/**
 * getmail6 against a live server, delivering into a Maildir: a run with
 * `read_all = false` keeps an oldmail file so a second run fetches
 * nothing; a run with `delete = true` over implicit TLS (CA checked)
 * empties the maildrop; APOP (`use_apop`) logs in with the greeting's
 * timestamp. getmail refuses to deliver as root, so as root it runs as
 * nobody (setpriv) in a folder given to nobody.
 */
import t, { type Test } from 'tap';
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingClient, run, startInteropServer, type InteropServer } from '../helpers/pop3-interop.ts';
import { TLS_DIR, workDir } from '../helpers/pop3-harness.ts';

const skip = await missingClient('getmail', ['--version']);
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

interface Run {
  readonly tls?: boolean;
  readonly delete?: boolean;
  readonly apop?: boolean;
}

function chownTree(path: string): void {
  chownSync(path, NOBODY, NOBODY);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) chownTree(p);
    else chownSync(p, NOBODY, NOBODY);
  }
}

function prepare(t: Test): string {
  const dir = workDir(t, 'getmail');
  for (const sub of ['Maildir/cur', 'Maildir/new', 'Maildir/tmp', 'state']) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(new URL('ca.crt', TLS_DIR), join(dir, 'ca.crt'));
  return dir;
}

async function getmail(t: Test, server: InteropServer, dir: string, options: Run) {
  writeFileSync(
    join(dir, 'getmailrc'),
    [
      '[retriever]',
      `type = ${options.tls === true ? 'SimplePOP3SSLRetriever' : 'SimplePOP3Retriever'}`,
      `server = ${options.tls === true ? 'localhost' : '127.0.0.1'}`,
      `port = ${options.tls === true ? server.tlsPort : server.port}`,
      'username = alice',
      'password = secret',
      ...(options.tls === true ? [`ca_certs = ${join(dir, 'ca.crt')}`] : []),
      ...(options.apop === true ? ['use_apop = true'] : []),
      '',
      '[destination]',
      'type = Maildir',
      `path = ${join(dir, 'Maildir')}/`,
      '',
      '[options]',
      'read_all = false',
      `delete = ${options.delete === true ? 'true' : 'false'}`,
      'delivered_to = false',
      'received = false',
      'verbose = 1',
      '',
    ].join('\n'),
  );
  if (isRoot) chownTree(dir);
  const args = ['--rcfile', join(dir, 'getmailrc'), '--getmaildir', join(dir, 'state')];
  const result = isRoot
    ? await run('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', 'getmail', ...args], {
        env: { HOME: dir },
        cwd: dir,
      })
    : await run('getmail', args, { env: { HOME: dir }, cwd: dir });
  t.equal(result.code, 0, `${result.stdout.toString()}\n${result.stderr}`);
  return result;
}

function delivered(dir: string): string[] {
  const news = join(dir, 'Maildir', 'new');
  return readdirSync(news).map((f) => readFileSync(join(news, f), 'latin1'));
}

/**
 * What getmail makes of a message, independently of the server: LF line
 * ends, and a `Return-Path: <unknown>` first line when the message has no
 * Return-Path. Lone CRs (not part of CRLF) it turns into line ends in ways
 * of its own (Python's email parser), so messages holding one are compared
 * with every run of CR/LF taken as one line break; the others exactly.
 */
function hasLoneCr(stored: Buffer): boolean {
  return /\r(?!\n)/.test(stored.toString('latin1'));
}

function view(text: string, loose: boolean): string {
  const lf = text.replace(/\r\n/g, '\n').replace(/\n*$/, '\n');
  return loose ? lf.replace(/[\r\n]+/g, '\n') : lf;
}

function sameMessages(t: Test, got: string[], server: InteropServer): void {
  const loose = server.expected.some((m) => hasLoneCr(m.stored));
  t.ok(loose, 'the fixtures include lone CRs');
  const want = server.expected.map((m) => view(m.stored.toString('latin1'), hasLoneCr(m.stored)));
  const have = got.map((g) => g.replace(/^Return-Path: <unknown>\n/, ''));
  for (const [i, w] of want.entries()) {
    const isLoose = hasLoneCr(server.expected[i]!.stored);
    t.ok(have.some((h) => view(h, isLoose) === w), `${server.expected[i]!.file} delivered intact${isLoose ? ' (line breaks aside)' : ''}`);
  }
}

t.test('getmail keeps an oldmail file: the second run fetches nothing', { skip }, async (t) => {
  const server = await startInteropServer(t);
  const dir = prepare(t);
  await getmail(t, server, dir, {});
  const got = delivered(dir);
  t.equal(got.length, server.expected.length);
  sameMessages(t, got, server);
  await getmail(t, server, dir, {});
  t.equal(delivered(dir).length, server.expected.length, 'nothing again');
  const left = [...readdirSync(join(server.maildir, 'cur')), ...readdirSync(join(server.maildir, 'new'))];
  t.equal(left.length, server.expected.length, 'delete = false left everything on the server');
});

t.test('getmail over implicit TLS with delete = true empties the maildrop', { skip }, async (t) => {
  const server = await startInteropServer(t);
  const dir = prepare(t);
  await getmail(t, server, dir, { tls: true, delete: true });
  t.equal(delivered(dir).length, server.expected.length);
  const left = [...readdirSync(join(server.maildir, 'cur')), ...readdirSync(join(server.maildir, 'new'))];
  t.same(left, []);
});

t.test('getmail with APOP', { skip }, async (t) => {
  const server = await startInteropServer(t, { apop: true });
  const dir = prepare(t);
  await getmail(t, server, dir, { apop: true });
  t.equal(delivered(dir).length, server.expected.length);
  t.ok(server.harness.events.some((e) => e.name === 'login' && e.payload.mechanism === 'APOP'), 'logged in with APOP');
});
