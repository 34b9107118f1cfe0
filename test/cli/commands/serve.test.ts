/**
 * `maildird serve` as a real child process on a temporary tree: listener
 * lines, a real POP3 session, start-up recovery, user reload, clean exit on
 * SIGTERM/SIGINT, and one-line start-up errors.
 */
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { LineClient } from '../../helpers/pop3-client.js';
import { REPO, ServeProcess, portOf, runCli } from '../../helpers/cli-run.js';

const MSG = 'From: bob@example.org\nTo: alice@example.org\nSubject: hello\n\nHi Alice.\n';
const NAME = '1700000000.M1P1.host';
const TLS_CERT = path.join(REPO, 'fixtures', 'tls', 'localhost.crt');
const TLS_KEY = path.join(REPO, 'fixtures', 'tls', 'localhost.key');
const TLS_CA = path.join(REPO, 'fixtures', 'tls', 'ca.crt');

/** A tree with alice (one new message) and her {PLAIN} password, and a config serving POP3 on a free port. */
function tree(t: Test, config: Record<string, unknown> = {}): string {
  return t.testdir({
    'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: '127.0.0.1:0' }, ...config }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: { alice: { cur: {}, new: { [NAME]: MSG }, tmp: {} } },
  });
}

async function login(port: number, user = 'alice', password = 'wonder'): Promise<LineClient> {
  const client = await LineClient.connect(port);
  await client.expect(/^\+OK /);
  await client.command(`USER ${user}`, /^\+OK/);
  await client.command(`PASS ${password}`, /^\+OK/);
  return client;
}

t.test('prints the listeners, serves SMTP and POP3, reports what is not built, exits 0 on SIGTERM', async (t) => {
  const dir = tree(t);
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const pop3 = lines.find((l) => l.name === 'pop3');
  t.equal(pop3?.state, 'listening');
  t.match(pop3?.address ?? '', /^127\.0\.0\.1:\d+$/);
  t.not(portOf(pop3?.address ?? ':0'), 0, 'port 0 resolved to the bound port');
  const smtp = lines.find((l) => l.name === 'smtp');
  t.equal(smtp?.state, 'listening');
  t.same(
    lines.filter((l) => l.state === 'not built yet').map((l) => `${l.name} ${l.address}`),
    [],
    'every front-end is built (http included)',
  );
  t.match(serve.stdout, `maildird: serving ${path.join(dir, 'mail')} (users ${path.join(dir, 'passwd')}, config ${path.join(dir, 'maildird.json')})`);
  t.notMatch(serve.stdout, /Example users/, 'login hints only for maildir.example');

  // A message in over SMTP is readable over POP3.
  const sender = await LineClient.connect(portOf(smtp?.address ?? ':0'));
  await sender.expect(/^220 /);
  await sender.command('HELO client.example.net', /^250 /);
  await sender.command('MAIL FROM:<bob@example.net>', /^250 /);
  await sender.command('RCPT TO:<alice@localhost>', /^250 /);
  await sender.command('DATA', /^354 /);
  await sender.command('Subject: over smtp\r\n\r\nsecond message\r\n.', /^250 /);
  await sender.command('QUIT', /^221 /);

  const client = await login(portOf(pop3?.address ?? ':0'));
  t.match(await client.command('STAT', /^\+OK/), /^\+OK 2 /);
  await client.command('RETR 1', /^\+OK/);
  const body = await client.lines();
  t.equal(body.join('\n'), MSG.trimEnd());
  await client.command('RETR 2', /^\+OK/);
  const second = await client.lines();
  t.match(second.join('\n'), /^Return-Path: <bob@example\.net>\n[\s\S]*Subject: over smtp\n\nsecond message$/);
  await client.command('QUIT', /^\+OK/);

  const result = await serve.stop('SIGTERM');
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /SIGTERM: stopping\nstopped\n$/);
  t.match(result.stderr, /"msg":"maildird started"/, 'pino JSON logs on stderr');
  t.same(readdirSync(path.join(dir, 'mail', 'alice', 'new')), [], 'QUIT after RETR moved the messages to cur/ (Seen)');
  t.equal(readdirSync(path.join(dir, 'mail', 'alice', 'cur')).length, 2);
});

t.test('SIGINT during a session: exit 0, nothing deleted, the lock released', async (t) => {
  const dir = tree(t);
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const pop3 = (await serve.ready()).find((l) => l.name === 'pop3');
  const client = await login(portOf(pop3?.address ?? ':0'));
  await client.command('DELE 1', /^\+OK/);
  t.ok(existsSync(path.join(dir, 'mail', 'alice', 'maildird.lock')), 'the session holds the lock');
  const closed = once(client.socket, 'close');
  const result = await serve.stop('SIGINT');
  await closed;
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /SIGINT: stopping/);
  t.same(readdirSync(path.join(dir, 'mail', 'alice', 'new')), [NAME], 'DELE without QUIT deletes nothing');
  t.notOk(existsSync(path.join(dir, 'mail', 'alice', 'maildird.lock')), 'lock released');
});

t.test('command-line flags override the config file; POP3S with a certificate', async (t) => {
  const dir = tree(t, { listeners: { http: '127.0.0.1:0' } });
  const serve = ServeProcess.start(
    ['--pop3', '127.0.0.1:0', '--pop3s', '127.0.0.1:0', '--tls-cert', TLS_CERT, '--tls-key', TLS_KEY, '--log-level', 'warn'],
    { cwd: dir },
  );
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  t.same(
    lines.map((l) => `${l.name} ${l.state}`),
    ['pop3 listening', 'pop3s listening', 'http listening'],
  );
  const pop3s = lines.find((l) => l.name === 'pop3s');
  const client = await LineClient.connect(portOf(pop3s?.address ?? ':0'), { tls: { ca: readFileSync(TLS_CA) } });
  await client.expect(/^\+OK /);
  await client.command('USER alice', /^\+OK/);
  await client.command('PASS wonder', /^\+OK/);
  await client.command('QUIT', /^\+OK/);
  const result = await serve.stop();
  t.equal(result.code, 0);
  t.notMatch(result.stderr, /"level":30/, '--log-level warn drops info lines');
});

t.test('start-up rolls a leftover batch journal forward', async (t) => {
  const dir = tree(t);
  const alice = path.join(dir, 'mail', 'alice');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(path.join(alice, '.Trash', sub), { recursive: true });
  writeFileSync(
    path.join(alice, 'maildird-batch.journal'),
    `{"maildird-batch":1,"mode":"trash","entries":1}\n{"from":"new/${NAME}","to":".Trash/cur/${NAME}:2,"}\n`,
  );
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  await serve.ready();
  t.notOk(existsSync(path.join(alice, 'maildird-batch.journal')), 'journal rolled forward and removed');
  t.same(readdirSync(path.join(alice, '.Trash', 'cur')), [`${NAME}:2,`]);
  t.same(readdirSync(path.join(alice, 'new')), []);
  t.equal((await serve.stop()).code, 0);
});

t.test('a user added while serving can log in once the file is reloaded', async (t) => {
  const dir = tree(t);
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const pop3 = (await serve.ready()).find((l) => l.name === 'pop3');
  const reloaded = new Promise<void>((resolve) => {
    const check = () => {
      if (serve.stderr.includes('"msg":"users file reloaded"')) resolve();
    };
    serve.child.stderr?.on('data', check);
  });
  const add = await runCli(['user', 'add', 'zoe'], { cwd: dir, input: 'zoe-pass\n' });
  t.equal(add.code, 0, add.stderr);
  await reloaded;
  const client = await login(portOf(pop3?.address ?? ':0'), 'zoe', 'zoe-pass');
  await client.command('STAT', /^\+OK 0 0/);
  await client.command('QUIT', /^\+OK/);
  t.equal((await serve.stop()).code, 0);
});

t.test('start-up errors: one line naming the problem, no stack trace', async (t) => {
  const cases: { name: string; args: string[]; config?: Record<string, unknown>; remove?: string; write?: Record<string, string>; code: number; message: RegExp }[] = [
    { name: 'no users file', args: [], remove: 'passwd', code: 66, message: /^maildird: users .*passwd: not found \(create it with: maildird user add --users .*passwd NAME\)\n$/ },
    { name: 'no root', args: ['--root', 'nope'], code: 66, message: /^maildird: root .*nope: not found\n$/ },
    { name: 'missing certificate', args: ['--tls-cert', 'no.pem', '--tls-key', 'no.key'], code: 66, message: /^maildird: tls\.cert .*no\.pem: not found\n$/ },
    { name: 'certificate and key that do not match', args: ['--tls-cert', TLS_CERT, '--tls-key', path.join(REPO, 'fixtures', 'tls', 'selfsigned.key')], code: 78, message: /^maildird: invalid TLS certificate or key/ },
    { name: 'bad listener flag', args: ['--pop3', 'localhost:pop'], code: 64, message: /^maildird: invalid value for listeners\.pop3 from --pop3: "localhost:pop"/ },
    { name: 'pop3s without a certificate', args: ['--pop3s', '0'], code: 78, message: /^maildird: listeners\.pop3s is \*:0 but it needs tls\.cert and tls\.key/ },
    { name: 'no aliases file', args: [], config: { aliases: 'aliases' }, code: 66, message: /^maildird: aliases .*aliases: not found\n$/ },
    { name: 'broken aliases file', args: [], config: { aliases: 'aliases' }, write: { aliases: 'ok: alice\nsales bob\n' }, code: 78, message: /^maildird: .*aliases line 2: expected "alias: target, \.\.\."\n$/ },
  ];
  for (const c of cases) {
    const dir = tree(t, c.config);
    if (c.remove !== undefined) (await import('node:fs')).rmSync(path.join(dir, c.remove));
    for (const [name, text] of Object.entries(c.write ?? {})) (await import('node:fs')).writeFileSync(path.join(dir, name), text);
    const result = await runCli(['serve', ...c.args], { cwd: dir });
    t.equal(result.code, c.code, c.name);
    t.match(result.stderr, c.message, c.name);
    t.notMatch(result.stderr, /\n\s+at /, `${c.name}: no stack trace`);
  }
});

t.test('a port already in use: exit 78 naming the listener', async (t) => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const dir = tree(t);
  const result = await runCli(['serve', '--pop3', `127.0.0.1:${port}`], { cwd: dir });
  t.equal(result.code, 78);
  // The POP3 server logs the listen error (a pino line) before serve reports it in one line, last.
  t.match(result.stderr, new RegExp(`(^|\\n)maildird: listeners\\.pop3 127\\.0\\.0\\.1:${port}: address already in use\\n$`));
});

t.test('the demo config (npm start) starts, prints every listener and how to log in', async (t) => {
  // Free ports instead of the demo's fixed ones, so the test never collides with a running demo.
  const env = Object.fromEntries(
    ['POP3', 'POP3S', 'SMTP', 'SUBMISSION', 'SMTPS', 'LMTP', 'HTTP'].map((name) => [`MAILDIRD_${name}`, '127.0.0.1:0']),
  );
  const serve = ServeProcess.start(['--config', 'maildir.example/maildird.json'], { cwd: REPO, env });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  t.same(
    lines.map((l) => l.name),
    ['pop3', 'pop3s', 'smtp', 'submission', 'smtps', 'lmtp', 'http'],
  );
  const pop3 = lines.find((l) => l.name === 'pop3');
  t.match(serve.stdout, /Example users \(maildir\.example\/README\.md\):\n {2}alice +password wonderland/);
  t.match(serve.stdout, `curl pop3://alice:wonderland@${pop3?.address}/ `, 'CRAM-MD5 and APOP off: curl needs no options');
  t.equal((await serve.stop('SIGINT')).code, 0);
});
