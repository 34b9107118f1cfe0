/**
 * `maildird serve --workers 2`: a real primary with two real worker
 * processes on real sockets. Which worker serves a connection is read from
 * the workers' own log lines (each carries its `worker` id and pid).
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import * as path from 'node:path';
import { LineClient } from '../helpers/pop3-client.js';
import { ServeProcess, portOf } from '../helpers/cli-run.js';

interface LogLine {
  readonly msg?: string;
  readonly pid?: number;
  readonly worker?: number;
  readonly pids?: number[];
  readonly [key: string]: unknown;
}

function logLines(serve: ServeProcess): LogLine[] {
  return serve.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Resolve once `count` log lines match; reject if serve exits first. */
function waitForLog(serve: ServeProcess, match: (line: LogLine) => boolean, count = 1): Promise<LogLine[]> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const found = logLines(serve).filter(match);
      if (found.length >= count) {
        serve.child.stderr?.off('data', check);
        resolve(found);
      }
    };
    serve.child.stderr?.on('data', check);
    void serve.exited().then(() => reject(new Error(`serve exited before ${count} matching log lines:\n${serve.stderr}`)));
    check();
  });
}

function get(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
    req.end();
  });
}

async function login(port: number, user: string, password: string): Promise<LineClient> {
  const client = await LineClient.connect(port);
  await client.expect(/^\+OK /);
  await client.command(`USER ${user}`, /^\+OK/);
  await client.command(`PASS ${password}`, /^\+OK/);
  return client;
}

/**
 * Wait until /metrics shows `count` open POP3 connections. A worker tells
 * the primary that a connection closed just before it stops counting it,
 * on the same channel the metrics request takes, so the primary's count
 * is as low once this resolves.
 */
async function openPop3Connections(httpPort: number, count: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const page = await get(httpPort, '/metrics');
    if (page.includes(`maildird_connections_open{proto="pop3"} ${count}\n`)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never ${count} open POP3 connections`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('serve --workers 2: shared listeners, POP3 and SMTP limits, IN-USE, metrics, SIGHUP, a dead worker replaced, SIGTERM', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({
      listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: '127.0.0.1:0' },
      limits: { maxConnectionsPerIp: 4 },
    }),
    passwd: 'alice:{PLAIN}wonder\nbob:{PLAIN}builder\n',
    mail: {
      alice: { cur: {}, new: { '1700000000.M1P1.host': 'Subject: hi\n\nHello.\n' }, tmp: {} },
      bob: { cur: {}, new: {}, tmp: {} },
    },
  });
  const serve = ServeProcess.start(['--workers', '2'], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const port = portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0');
  const httpPort = portOf(lines.find((l) => l.name === 'http')?.address ?? ':0');
  const smtpPort = portOf(lines.find((l) => l.name === 'smtp')?.address ?? ':0');
  t.match(serve.stdout, /2 worker processes/);
  const [started] = await waitForLog(serve, (l) => l.msg === 'workers listening');
  const workerPids = started?.pids ?? [];
  t.equal(workerPids.length, 2, 'two workers');
  t.notOk(workerPids.includes(serve.child.pid ?? -1), 'the workers are not the primary');

  // Both workers answer: consecutive connections go round-robin.
  const sessionEnds = () => logLines(serve).filter((l) => l.msg === 'session end');
  for (let i = 0; i < 2; i++) {
    const client = await LineClient.connect(port);
    await client.expect(/^\+OK /);
    await client.command('QUIT', /^\+OK/);
    await client.closed();
  }
  await waitForLog(serve, (l) => l.msg === 'session end', 2);
  t.same(new Set(sessionEnds().map((l) => l.pid)).size, 2, 'two sessions, served by two different workers');

  // IN-USE across workers: alice's maildrop is locked by one worker, the next connection is on the other.
  const first = await login(port, 'alice', 'wonder');
  const second = await LineClient.connect(port);
  await second.expect(/^\+OK /);
  await second.command('USER alice', /^\+OK/);
  await second.command('PASS wonder', /^-ERR \[IN-USE\]/);
  await second.command('QUIT', /^\+OK/);
  await first.command('QUIT', /^\+OK/);
  await waitForLog(serve, (l) => l.msg === 'session end', 4);
  const [, , a, b] = sessionEnds();
  t.not(a?.pid, b?.pid, 'the refused session ran in the other worker');

  // The per-IP limit (4) holds across both workers: 2 + 2 open, the fifth is refused.
  await openPop3Connections(httpPort, 0);
  const held: LineClient[] = [];
  for (let i = 0; i < 4; i++) {
    const client = await LineClient.connect(port);
    await client.expect(/^\+OK /);
    held.push(client);
  }
  const fifth = await LineClient.connect(port);
  await fifth.expect(/^-ERR \[SYS\/TEMP\]/);
  await fifth.closed();
  const last = held.pop();
  await last?.command('QUIT', /^\+OK/);
  await last?.closed();
  await openPop3Connections(httpPort, 3);
  const again = await LineClient.connect(port);
  await again.expect(/^\+OK /);
  held.push(again);
  for (const client of held) {
    await client.command('QUIT', /^\+OK/);
    await client.closed();
  }

  // SMTP too: its own count, the same limit across the workers.
  const smtp: LineClient[] = [];
  for (let i = 0; i < 4; i++) {
    const client = await LineClient.connect(smtpPort);
    await client.expect(/^220 /);
    smtp.push(client);
  }
  const fifthSmtp = await LineClient.connect(smtpPort);
  await fifthSmtp.expect(/^421 /);
  await fifthSmtp.closed();
  for (const client of smtp) {
    await client.command('QUIT', /^221 /);
    await client.closed();
  }

  // /metrics in the primary sums the workers: one login (alice), one refused for IN-USE.
  const metrics = await get(httpPort, '/metrics');
  t.match(metrics, /^maildird_logins_total\{proto="pop3"\} 1$/m, 'logins summed over the workers');
  t.match(metrics, /^maildird_lock_contention_total 1$/m, 'lock contention summed over the workers');
  t.match(metrics, /^maildird_connections_open\{proto="http"\} 1$/m, 'the primary counts its own HTTP connection');

  // SIGHUP reaches every worker.
  writeFileSync(path.join(dir, 'passwd'), 'alice:{PLAIN}wonder\nbob:{PLAIN}builder\ncarol:{PLAIN}singer\n');
  serve.child.kill('SIGHUP');
  const reloads = await waitForLog(serve, (l) => l.msg === 'reloading users, aliases and certificates' && l.worker !== undefined, 2);
  t.same(new Set(reloads.map((l) => l.worker)).size, 2, 'both workers reloaded');
  await waitForLog(serve, (l) => l.msg === 'users file reloaded' && l.worker !== undefined, 2);
  for (let i = 0; i < 2; i++) {
    const carol = await login(port, 'carol', 'singer');
    await carol.command('QUIT', /^\+OK/);
  }

  // A worker that dies is logged and replaced; service goes on.
  const victim = workerPids[0] as number;
  process.kill(victim, 'SIGKILL');
  const [died] = await waitForLog(serve, (l) => l.msg === 'worker died; starting a new one');
  t.equal(died?.pid, victim);
  const [replaced] = await waitForLog(serve, (l) => l.msg === 'replacement worker listening');
  t.equal(replaced?.workers, 2, 'two workers again');
  for (let i = 0; i < 2; i++) {
    const bob = await login(port, 'bob', 'builder');
    await bob.command('QUIT', /^\+OK/);
  }

  // SIGTERM: every worker stops, then the primary, with exit code 0.
  const survivors = logLines(serve)
    .filter((l) => l.msg === 'session end')
    .map((l) => l.pid as number)
    .filter((pid) => pid !== victim);
  const result = await serve.stop('SIGTERM');
  t.equal(result.code, 0, 'exit code 0');
  t.match(result.stdout, /SIGTERM: stopping\nstopped\n$/);
  t.equal(logLines(serve).filter((l) => l.msg === 'worker stopped').length, 2, 'both workers stopped gracefully');
  for (const pid of new Set(survivors)) t.notOk(isAlive(pid), `worker ${pid} is gone`);
});

t.test('serve --workers 2: a worker that cannot start stops the primary with its exit code', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: false, lmtp: '/nonexistent-maildird-dir/lmtp.sock' } }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: {},
  });
  const serve = ServeProcess.start(['--workers', '2'], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const result = await serve.exited();
  t.not(result.code, 0, `exit code ${result.code}`);
  t.match(result.stderr, /worker process exited during start-up/, result.stderr);
});
