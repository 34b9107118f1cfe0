/**
 * The pre-delivery filter (src/smtp/filter.ts) with real `sh` commands as
 * filters, over a real SMTP (and LMTP) server on a real Maildir: accept with
 * added headers, reject, defer, and every way a filter can fail (crash,
 * wrong exit code, missing command, timeout, flood of output, output that is
 * not headers), each deferring with nothing stored. The timeout is fired by
 * hand (ManualTimers), never waited for.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeOf, type SmtpTestClient } from '../helpers/smtp-client.js';
import { delivered, startSmtp, type Harness } from '../helpers/smtp-setup.js';

const MESSAGE = 'From: bob@example.net\r\nSubject: filtered\r\n\r\nhello filter\r\n';

function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'maildird-filter-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function withFilter(t: Test, command: string, extra: { lmtp?: boolean } = {}): Promise<Harness> {
  return startSmtp(t, {
    filter: { command, timeoutMs: 30_000 },
    ...(extra.lmtp === true ? { lmtp: true, authOffered: 'never' as const } : {}),
  });
}

/** MAIL, RCPT for each, DATA and the content; returns the reply to the final dot. */
async function send(c: SmtpTestClient, rcpts: readonly string[], content = MESSAGE, opening = 'EHLO client.example') {
  t.equal((await c.command(opening)).code, 250);
  t.equal((await c.command('MAIL FROM:<bob@example.net>')).code, 250);
  for (const rcpt of rcpts) t.equal((await c.command(`RCPT TO:<${rcpt}>`)).code, 250);
  t.equal((await c.command('DATA')).code, 354);
  return c.command(`${content}.`);
}

t.test('exit 0: accepted, the filter saw the trace header and the message, its header lines are added', async (t) => {
  const dir = scratch(t);
  const h = await withFilter(
    t,
    `cat > '${dir}/input'; printf '%s\\n' "$MAILDIRD_SENDER|$MAILDIRD_RECIPIENTS|$MAILDIRD_CLIENT_ADDRESS|$MAILDIRD_HELO" > '${dir}/env'; ` +
      `printf 'X-Spam-Status: No, score=1.5\\n\\ttests=NONE\\nX-Filter: checked\\n'`,
  );
  const c = await h.connect();
  const reply = await send(c, ['alice@example.org', 'bob@example.org']);
  t.equal(reply.code, 250);
  const input = readFileSync(join(dir, 'input'), 'latin1');
  t.match(input, /^Return-Path: <bob@example\.net>\r\nReceived: from client\.example/, 'our trace header first');
  t.ok(input.endsWith(`\r\n${MESSAGE}`), 'then the message as received');
  t.notMatch(input, /for </, 'no per-recipient for clause');
  t.equal(readFileSync(join(dir, 'env'), 'latin1'), 'bob@example.net|alice@example.org bob@example.org|127.0.0.1|client.example\n');
  for (const user of ['alice', 'bob']) {
    const files = await delivered(h.root ?? '', user);
    t.equal(files.length, 1, `${user}: one copy`);
    const stored = files[0]?.[1].toString('latin1') ?? '';
    t.match(stored, /\nX-Spam-Status: No, score=1\.5\n\ttests=NONE\nX-Filter: checked\nFrom: bob@example\.net\n/, `${user}: headers added before the message`);
    t.match(stored, /^Return-Path: <bob@example\.net>\nReceived: /, `${user}: after our own trace lines`);
  }
});

t.test('exit 77 rejects (550 5.7.1, first stdout line); exit 75 defers (451 4.7.1); nothing stored', async (t) => {
  for (const [command, expected, text] of [
    ["cat >/dev/null; echo 'Spam score 12.5 above 5.0'; echo 'second line'; exit 77", '550 5.7.1', 'Spam score 12.5 above 5.0'],
    ['cat >/dev/null; exit 77', '550 5.7.1', 'Message rejected by content filter'],
    ["cat >/dev/null; echo 'Greylisted, come back later'; exit 75", '451 4.7.1', 'Greylisted, come back later'],
  ] as const) {
    const h = await withFilter(t, command);
    const c = await h.connect();
    const reply = await send(c, ['alice@example.org']);
    t.equal(codeOf(reply), expected, command);
    t.equal(reply.text, `${expected.slice(4)} ${text}`);
    t.same(await delivered(h.root ?? '', 'alice'), [], 'nothing stored');
    t.equal((await c.command('RSET')).code, 250, 'the session goes on');
  }
});

t.test('a broken filter defers with 451 4.3.0 and stores nothing: crash, wrong exit, missing, flood, not headers', async (t) => {
  const cases: readonly [string, string][] = [
    ['crash (SIGSEGV)', 'cat >/dev/null; kill -SEGV $$'],
    ['exit 1 (a script error, not a verdict)', 'cat >/dev/null; exit 1'],
    ['missing command', '/nonexistent/maildird-filter --check'],
    ['10 MB on stdout', "head -c 10000000 /dev/zero | tr '\\0' x"],
    ['stdout that is not header lines', "cat >/dev/null; echo 'this is not a header'"],
    ['a NUL in a header line', "cat >/dev/null; printf 'X-Bad: a\\000b\\n'"],
  ];
  for (const [name, command] of cases) {
    const h = await withFilter(t, command);
    const c = await h.connect();
    const reply = await send(c, ['alice@example.org']);
    t.equal(codeOf(reply), '451 4.3.0', name);
    t.same(await delivered(h.root ?? '', 'alice'), [], `${name}: nothing stored`);
    t.equal((await c.command('NOOP')).code, 250, `${name}: the server is fine`);
  }
});

t.test('a filter that decides without reading a large message is fine (EPIPE is not a failure)', async (t) => {
  const h = await withFilter(t, 'exit 0');
  const c = await h.connect();
  const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(2000);
  t.equal((await send(c, ['alice@example.org'], big)).code, 250);
  t.equal((await delivered(h.root ?? '', 'alice')).length, 1);
});

t.test('timeout: the filter and what it started are killed, the message deferred', async (t) => {
  const dir = scratch(t);
  const h = await withFilter(t, `echo $$ > '${dir}/pid'; cat >/dev/null; sleep 1000 & wait`);
  const c = await h.connect();
  t.equal((await c.command('EHLO client.example')).code, 250);
  t.equal((await c.command('MAIL FROM:<bob@example.net>')).code, 250);
  t.equal((await c.command('RCPT TO:<alice@example.org>')).code, 250);
  t.equal((await c.command('DATA')).code, 354);
  c.write(`${MESSAGE}.\r\n`);
  await h.timers.running('filter');
  t.same(h.timers.pending('filter'), [30_000], 'the configured timeout');
  // The shell has started (and said who it is) before the timer fires.
  let pid = Number.NaN;
  for (let i = 0; i < 100_000 && !(pid > 0); i++) {
    pid = existsSync(join(dir, 'pid')) ? Number(readFileSync(join(dir, 'pid'), 'utf8')) : Number.NaN;
    if (!(pid > 0)) await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(h.timers.fire('filter'), 1);
  t.equal(codeOf(await c.reply()), '451 4.3.0');
  t.same(await delivered(h.root ?? '', 'alice'), []);
  let isAlive = true;
  for (let i = 0; i < 100_000 && isAlive; i++) {
    try {
      process.kill(pid, 0);
      await new Promise((resolve) => setImmediate(resolve));
    } catch {
      isAlive = false;
    }
  }
  t.notOk(isAlive, 'the filter shell is gone');
});

t.test('LMTP: one verdict for the message, one reply per recipient', async (t) => {
  const h = await withFilter(t, "cat >/dev/null; echo 'No thanks'; exit 77", { lmtp: true });
  const c = await h.connect();
  t.equal((await c.command('LHLO client.example')).code, 250);
  t.equal((await c.command('MAIL FROM:<bob@example.net>')).code, 250);
  t.equal((await c.command('RCPT TO:<alice@example.org>')).code, 250);
  t.equal((await c.command('RCPT TO:<bob@example.org>')).code, 250);
  t.equal((await c.command('DATA')).code, 354);
  c.write(`${MESSAGE}.\r\n`);
  const replies = await c.replies(2);
  t.same(replies.map(codeOf), ['550 5.7.1', '550 5.7.1']);
  t.same(await delivered(h.root ?? '', 'alice'), []);
});

t.test('maildird deliver runs the same filter: accept adds headers (exit 0), reject exits 65, defer and failures 75', async (t) => {
  const { runCli } = await import('../helpers/cli-run.js');
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ domains: ['example.org'] }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: { alice: { cur: {}, new: {}, tmp: {} } },
  });
  const newMail = () => readdirSync(join(dir, 'mail', 'alice', 'new'));
  const run = (command: string) =>
    runCli(['deliver', '-f', 'bob@example.net', '-a', 'alice@example.org'], {
      cwd: dir,
      env: { MAILDIRD_FILTER_COMMAND: command },
      input: MESSAGE,
    });

  let result = await run("cat >/dev/null; echo 'Spam'; exit 77");
  t.equal(result.code, 65, 'rejected: the MTA bounces it');
  t.match(result.stderr, /5\.7\.1 Spam/);
  t.same(newMail(), []);
  for (const command of ["cat >/dev/null; echo 'later'; exit 75", 'cat >/dev/null; exit 3', '/nonexistent/filter']) {
    result = await run(command);
    t.equal(result.code, 75, `${command}: deferred, the MTA keeps it`);
    t.same(newMail(), []);
  }
  result = await run("cat >/dev/null; echo 'X-Checked: yes'");
  t.equal(result.code, 0, result.stderr);
  const [name] = newMail();
  t.match(readFileSync(join(dir, 'mail', 'alice', 'new', name ?? ''), 'latin1'), /\nX-Checked: yes\nFrom: bob@example\.net\n/);
});
