/**
 * Shutdown of a real `maildird serve` child under load it must not lose:
 * a POP3 session in the middle of a RETR of a large message (with a DELE
 * before it) and an SMTP session in the middle of DATA.
 *
 *   - SIGTERM: the RETR is sent whole, the session ends without UPDATE (the
 *     DELE'd message is still there), the DATA completes and is stored
 *     once, the process exits 0 with every lock released.
 *   - SIGTERM with a short grace period: a DATA that does not complete in
 *     time gets 421 and nothing is stored.
 *   - A second signal ends the process at once (exit 130), still losing
 *     nothing: the next start serves every message.
 *
 * The client "stalls" by not reading (POP3) or not sending (SMTP); the
 * test waits on replies, output lines and exits, never on time.
 */
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { LineClient } from '../helpers/pop3-client.js';
import { ServeProcess, portOf } from '../helpers/cli-run.js';

const SMALL = 'From: bob@example.org\nSubject: small\n\nsmall one\n';
const SMALL_NAME = '1700000001.M1P1.host';
const BIG_NAME = '1700000000.M1P1.host';
/** Larger than what loopback socket buffers hold, so the server is still sending when the signal comes. */
const BIG_LINES = 400_000;
const BIG = `From: bob@example.org\nSubject: big\n\n${'0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijk\n'.repeat(BIG_LINES)}`;
/** Wire size: every LF becomes CRLF. */
const BIG_WIRE = Buffer.byteLength(BIG) + (BIG.match(/\n/g)?.length ?? 0);

function tree(t: Test, graceSeconds: number): string {
  return t.testdir({
    'maildird.json': JSON.stringify({
      domains: ['example.org'],
      listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: false },
      limits: { shutdownGraceSeconds: graceSeconds },
    }),
    passwd: 'alice:{PLAIN}wonder\nbob:{PLAIN}builder\n',
    mail: { alice: { cur: {}, new: { [BIG_NAME]: BIG, [SMALL_NAME]: SMALL }, tmp: {} }, bob: { cur: {}, new: {}, tmp: {} } },
  });
}

interface Running {
  readonly serve: ServeProcess;
  readonly pop3: LineClient;
  readonly smtp: LineClient;
}

/** Serve; POP3: login, DELE 2, RETR 1 with reading stopped after the +OK; SMTP: DATA with half a message. */
async function startBusy(t: Test, dir: string): Promise<Running> {
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const port = (name: string) => portOf(lines.find((l) => l.name === name)?.address ?? ':0');

  const pop3 = await LineClient.connect(port('pop3'));
  await pop3.expect(/^\+OK /);
  await pop3.command('USER alice', /^\+OK/);
  await pop3.command('PASS wonder', /^\+OK/);
  await pop3.command('DELE 2', /^\+OK/);
  pop3.send('RETR 1');
  await pop3.expect(`+OK ${BIG_WIRE} octets`);
  pop3.socket.pause();

  const smtp = await LineClient.connect(port('smtp'));
  await smtp.expect(/^220 /);
  await smtp.command('HELO client.example.net', /^250 /);
  await smtp.command('MAIL FROM:<carol@example.net>', /^250 /);
  await smtp.command('RCPT TO:<bob@example.org>', /^250 /);
  await smtp.command('DATA', /^354 /);
  smtp.sendRaw('Subject: in flight\r\n\r\nfirst half\r\n');
  return { serve, pop3, smtp };
}

/** Resolves once serve printed `text` on stdout. */
function printed(serve: ServeProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (serve.stdout.includes(text)) {
        serve.child.stdout?.off('data', check);
        resolve();
      }
    };
    serve.child.stdout?.on('data', check);
    check();
  });
}

const files = (dir: string, user: string, sub = 'new') => readdirSync(path.join(dir, 'mail', user, sub)).sort();

t.test('SIGTERM: the RETR completes, no UPDATE, the DATA completes and is stored once, exit 0', async (t) => {
  const dir = tree(t, 3600);
  const { serve, pop3, smtp } = await startBusy(t, dir);
  const exited = serve.stop('SIGTERM');
  await printed(serve, 'SIGTERM: stopping');

  smtp.sendRaw('second half\r\n.\r\n');
  await smtp.expect(/^250 /);
  smtp.send('QUIT');
  await smtp.expect(/^(221|421) /);

  pop3.socket.resume();
  const body = await pop3.body();
  t.equal(body.length, BIG_WIRE, 'the message in flight is sent whole');
  t.match(await pop3.line(), /^-ERR \[SYS\/TEMP\] /, 'then the session is told the server is stopping');
  await pop3.closed();

  const result = await exited;
  t.equal(result.code, 0, result.stderr);
  t.same(files(dir, 'alice'), [BIG_NAME, SMALL_NAME], 'the DELE without QUIT removed nothing');
  t.same(readdirSync(path.join(dir, 'mail', 'alice')).filter((n) => n.startsWith('.Trash')), [], 'nothing went to Trash');
  t.notOk(existsSync(path.join(dir, 'mail', 'alice', 'maildird.lock')), 'the lock is released');
  t.equal(files(dir, 'bob').length, 1, 'the message acknowledged during shutdown is stored once');
  t.same(files(dir, 'bob', 'tmp'), [], 'no half-written file');
});

t.test('SIGTERM with a short grace: a DATA not completed in time gets 421 and is not stored', async (t) => {
  const dir = tree(t, 1);
  const { serve, pop3, smtp } = await startBusy(t, dir);
  const exited = serve.stop('SIGTERM');
  t.match(await smtp.line(), /^421 /, 'told, not acknowledged');
  await smtp.closed();
  pop3.socket.resume();
  const result = await exited;
  t.equal(result.code, 0, result.stderr);
  t.same(files(dir, 'bob'), [], 'nothing stored for the unacknowledged message');
  t.same(files(dir, 'bob', 'tmp'), [], 'and nothing left behind');
  t.same(files(dir, 'alice'), [BIG_NAME, SMALL_NAME], 'POP3 deleted nothing');
  t.notOk(existsSync(path.join(dir, 'mail', 'alice', 'maildird.lock')), 'the lock is released');
});

t.test('a second signal exits at once (130); nothing is lost and the next start serves everything', async (t) => {
  const dir = tree(t, 3600);
  const { serve, pop3, smtp } = await startBusy(t, dir);
  void serve.stop('SIGTERM');
  await printed(serve, 'SIGTERM: stopping');
  serve.child.kill('SIGTERM');
  const result = await serve.exited();
  t.equal(result.code, 130, 'forced');
  t.match(result.stderr, /SIGTERM again, stopping now/);
  pop3.destroy();
  smtp.destroy();
  t.same(files(dir, 'alice'), [BIG_NAME, SMALL_NAME], 'nothing deleted');
  t.same(files(dir, 'bob'), [], 'the unacknowledged message is not in new/');

  const again = ServeProcess.start([], { cwd: dir });
  t.teardown(() => again.stop('SIGKILL'));
  const lines = await again.ready();
  const client = await LineClient.connect(portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0'));
  await client.expect(/^\+OK /);
  await client.command('USER alice', /^\+OK/);
  await client.command('PASS wonder', /^\+OK .*2 messages/);
  await client.command('QUIT', /^\+OK/);
  const bob = await LineClient.connect(portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0'));
  await bob.expect(/^\+OK /);
  await bob.command('USER bob', /^\+OK/);
  await bob.command('PASS builder', /^\+OK .*0 messages/);
  await bob.command('QUIT', /^\+OK/);
  t.same(files(dir, 'bob', 'tmp'), [], 'the killed delivery\'s tmp file is gone after bob\'s next login');
  t.equal((await again.stop()).code, 0);
});

t.test('start-up self-check sweeps stale tmp files: 36 hours old, or left by a dead maildird; others stay', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { hostname } = await import('node:os');
  const { utimesSync } = await import('node:fs');
  const dead = spawnSync('true').pid ?? 1;
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: false, http: false } }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: {
      alice: {
        cur: {},
        new: {},
        tmp: {
          'old.foreign.writer': 'from two days ago',
          [`1700000000.M1P${dead}Q1.${hostname()}`]: 'a delivery whose maildird was killed',
          'fresh.postfix.writer': 'in flight now',
        },
      },
    },
  });
  const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
  utimesSync(path.join(dir, 'mail', 'alice', 'tmp', 'old.foreign.writer'), twoDaysAgo, twoDaysAgo);
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  await serve.ready();
  t.same(files(dir, 'alice', 'tmp'), ['fresh.postfix.writer'], 'swept before the listeners came up');
  t.notOk(existsSync(path.join(dir, 'mail', 'alice', 'maildird.lock')), 'the sweep let go of the lock');
  t.match(serve.stderr, /removed stale tmp file/);
  t.equal((await serve.stop()).code, 0);
});
