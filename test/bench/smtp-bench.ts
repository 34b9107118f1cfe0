/**
 * npm run bench:smtp (issue 4): messages per second durably delivered by
 * SMTP, 20 concurrent senders of 10 KB messages, side by side in one run:
 *
 *   - maildird: `maildird serve` (the built CLI, a child process) on a
 *     temporary tree; a message counts once the 250 came back, which
 *     maildird sends only after file fsync, rename and fsync of new/; the
 *     files in new/ are counted to check.
 *   - Postfix (Debian's, a private instance per ../shared/PEERS.md):
 *     virtual mailboxes delivering to Maildir; the clock stops when every
 *     message is a file in new/ (Postfix answers 250 once its queue file is
 *     safe and delivers afterwards). Skipped with a message when missing.
 *     Measured with strace on this machine: Postfix makes two fsyncs per
 *     message (its queue file in cleanup, the Maildir file in virtual) and
 *     none of new/; maildird makes one per file plus the shared fsyncs of
 *     new/ (group-commit.ts).
 *   - maildird (2 workers): the same with `workers: 2` (node:cluster
 *     processes sharing the listeners), when the build has that config key;
 *     skipped with a message otherwise. A message counts by smtp-source's
 *     250s and the files in new/ (each worker has its own /metrics
 *     counters, so fsyncs per message are given only when /metrics saw them
 *     all).
 *   - smtp-sink: Postfix's null server, the load client's own ceiling.
 *   - raw node:fs, 20 writers: the disk's ceiling for this load, no
 *     protocol (rawCeiling below).
 *
 * The load client for the SMTP rows is Postfix's smtp-source (`-c -d -l 10240
 * -m N -s 20`): 20 connections, each sending message after message. The
 * rows alternate between the servers for BENCH_SMTP_ROUNDS rounds (this is
 * a shared, noisy machine: compare within a run). Also reported: fsyncs per
 * message (maildird's /metrics, counted by the store), CPU per message of
 * each server (process tree, reaped children included) and of the client,
 * and the machine's one-at-a-time durable delivery rate (write 10 KB,
 * fsync, rename, fsync of new/, 1,000 times) that group commit must beat.
 *
 * Every row's files are kept until the end of the run, in block groups
 * of their own (see `isSpread` below for why).
 *
 * Figures go to stdout and test/bench/results/smtp.json (the README quotes
 * them). Every process started here is stopped by PID (also on failure and
 * Ctrl-C); every wait is bounded.
 *
 * Environment: BENCH_SMTP_MESSAGES (default 10000), BENCH_SMTP_ROUNDS (2),
 * BENCH_SMTP_TIMEOUT_S (per row, 600), BENCH_SMTP_SKIP_BUILD=1.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atExit, freePort, startProcess, stopProcess, treeCpuSeconds } from './helpers/processes.js';
import { fmt, table } from './helpers/stats.js';
import { concurrentRate, oneAtATimeRate } from './helpers/fsync-ceiling.js';
import { POSTFIX_SERVICES } from '../helpers/postfix.js';

const MESSAGES = Number(process.env.BENCH_SMTP_MESSAGES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_SMTP_ROUNDS ?? 2);
const TIMEOUT_MS = Number(process.env.BENCH_SMTP_TIMEOUT_S ?? 600) * 1000;
const SESSIONS = 20;
const PAYLOAD = 10_240;
const WARMUP = 400;
const RECIPIENT = 'bench@example.org';
const SENDER = 'sender@remote.example';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const bin = join(repo, 'bin', 'maildird');

// ---------------------------------------------------------------- helpers

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function which(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).status === 0;
}

function sleep(msDelay: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msDelay));
}

/** Pressure stall information (cpu, io): how contended the machine was. */
async function pressure(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const what of ['cpu', 'io']) {
    try {
      out[what] = (await readFile(`/proc/pressure/${what}`, 'utf8')).split('\n')[0] ?? '';
    } catch {
      // no PSI on this kernel
    }
  }
  return out;
}

async function countFiles(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).length;
  } catch {
    return 0;
  }
}

/** Resolves when `dir` holds at least `count` entries; polls (Postfix delivers after its 250s), bounded. */
async function waitForFiles(dir: string, count: number, deadline: number): Promise<number> {
  for (;;) {
    const n = await countFiles(dir);
    if (n >= count || Date.now() > deadline) return n;
    await sleep(20);
  }
}

interface ClientRun {
  readonly ok: boolean;
  readonly seconds: number;
  /** CPU seconds of smtp-source (user + system), from GNU time. */
  readonly clientCpu: number;
  readonly output: string;
}

/** smtp-source against `port`, under /usr/bin/time for its CPU; bounded by TIMEOUT_MS. */
async function smtpSource(port: number, messages: number): Promise<ClientRun> {
  const args = ['-f', '%U %S', 'smtp-source', '-c', '-d', '-l', String(PAYLOAD), '-m', String(messages), '-s', String(SESSIONS)];
  args.push('-f', SENDER, '-t', RECIPIENT, `127.0.0.1:${port}`);
  const start = process.hrtime.bigint();
  const child = startProcess('/usr/bin/time', args, ['ignore', 'ignore', 'pipe']);
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const timer = setTimeout(() => void stopProcess(child, 1_000), TIMEOUT_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  const seconds = ms(start) / 1000;
  const text = Buffer.concat(stderr).toString('utf8').trim();
  const last = text.split('\n').pop() ?? '';
  const cpu = /^([\d.]+) ([\d.]+)$/.exec(last);
  return {
    ok: code === 0,
    seconds,
    clientCpu: cpu === null ? Number.NaN : Number(cpu[1]) + Number(cpu[2]),
    output: text,
  };
}

// ------------------------------------------------------------ the servers

interface Row {
  readonly server: string;
  readonly round: number;
  readonly messages: number;
  readonly delivered: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly serverCpuMsPerMessage: number;
  readonly clientCpuMsPerMessage: number;
  readonly fsyncsPerMessage?: number;
  readonly note?: string;
}

interface Server {
  readonly name: string;
  /** Run the load once (after warm-up) and give its row. */
  run(round: number): Promise<Row>;
  stop(): Promise<void>;
}

/** smtp-sink: accepts and discards everything; the client's ceiling. */
async function startSink(): Promise<Server> {
  const port = await freePort();
  // -u: smtp-sink refuses to keep root privileges; 1024: listen backlog.
  const child = startProcess('smtp-sink', ['-u', 'nobody', `127.0.0.1:${port}`, '1024'], ['ignore', 'ignore', 'pipe']);
  await waitForPort(port, child);
  return {
    name: 'smtp-sink (client ceiling)',
    async run(round) {
      const cpu0 = treeCpuSeconds(child.pid ?? 0);
      const load = await smtpSource(port, MESSAGES);
      if (!load.ok) throw new Error(`smtp-source against smtp-sink failed: ${load.output}`);
      const cpu = treeCpuSeconds(child.pid ?? 0) - cpu0;
      return row('smtp-sink (client ceiling)', round, MESSAGES, MESSAGES, load, cpu);
    },
    stop: () => stopProcess(child, 5_000),
  };
}

/** Resolves once something accepts connections on `port` (bounded); rejects if `child` exits first. */
async function waitForPort(port: number, child?: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`process exited before listening on ${port}`);
    const ok = await new Promise<boolean>((res) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        res(true);
      });
      socket.once('error', () => res(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listening on ${port}`);
}

function row(server: string, round: number, messages: number, delivered: number, load: ClientRun, serverCpu: number, extra: Partial<Row> = {}): Row {
  return {
    server,
    round,
    messages,
    delivered,
    seconds: load.seconds,
    perSecond: delivered / load.seconds,
    serverCpuMsPerMessage: (serverCpu * 1000) / delivered,
    clientCpuMsPerMessage: (load.clientCpu * 1000) / messages,
    ...extra,
  };
}

const RAW_CEILING = `raw node:fs, ${SESSIONS} writers (disk ceiling)`;

/**
 * The disk's ceiling for this load: SESSIONS messages in flight through
 * raw node:fs (write, fsync, rename, shared fsync of new/), in this
 * process, no protocol and no store code (helpers/fsync-ceiling.ts). A
 * server's distance to it is its own work per message.
 */
function rawCeiling(work: string): Server {
  const body = Buffer.alloc(PAYLOAD, 0x78);
  return {
    name: RAW_CEILING,
    async run(round) {
      const run = await concurrentRate(MESSAGES, body, SESSIONS, work);
      const seconds = MESSAGES / run.perSecond;
      return row(RAW_CEILING, round, MESSAGES, MESSAGES, { ok: true, seconds, clientCpu: 0, output: '' }, (run.cpuMsPerMessage * MESSAGES) / 1000);
    },
    stop: async () => undefined,
  };
}

/** Whether the built maildird has the `workers` config key (node:cluster workers). */
async function hasWorkersKey(): Promise<boolean> {
  try {
    const schema = (await import(join(repo, 'dist', 'config', 'schema.js'))) as { KEYS?: readonly { key: string }[] };
    return (schema.KEYS ?? []).some((spec) => spec.key === 'workers');
  } catch {
    return false;
  }
}

/** `maildird serve` on a temporary tree: SMTP and HTTP (for /metrics) on loopback; `workers` > 1: that many cluster workers. */
async function startMaildird(work: string, workers = 1): Promise<Server> {
  const name = workers > 1 ? `maildird (${workers} workers)` : 'maildird';
  const dir = join(work, workers > 1 ? `maildird-${workers}w` : 'maildird');
  const root = join(dir, 'mail');
  await mkdir(root, { recursive: true });
  await writeFile(join(dir, 'passwd'), 'bench:{PLAIN}bench\n', { mode: 0o600 });
  const config = {
    root,
    users: join(dir, 'passwd'),
    domains: ['example.org'],
    hostname: 'mx.bench',
    logLevel: 'warn',
    listeners: { smtp: '127.0.0.1:0', http: '127.0.0.1:0' },
    ...(workers > 1 ? { workers } : {}),
  };
  await writeFile(join(dir, 'maildird.json'), JSON.stringify(config, null, 2));
  const child = startProcess(process.execPath, [bin, 'serve', '--config', join(dir, 'maildird.json')], ['ignore', 'pipe', 'pipe']);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  const text = () => Buffer.concat(out).toString('utf8');
  for (let i = 0; i < 600 && !text().includes('Stop with'); i++) {
    if (child.exitCode !== null) throw new Error(`maildird serve exited: ${Buffer.concat(err).toString('utf8')}`);
    await sleep(50);
  }
  const smtpPort = Number(/^smtp 127\.0\.0\.1:(\d+): listening$/m.exec(text())?.[1]);
  const httpPort = Number(/^http 127\.0\.0\.1:(\d+): listening$/m.exec(text())?.[1]);
  if (!(smtpPort > 0) || !(httpPort > 0)) throw new Error(`maildird serve did not report its listeners:\n${text()}`);
  const newDir = join(root, 'bench', 'new');

  const metrics = async (): Promise<{ fsyncs: number; delivered: number }> => {
    const body = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(body)?.[1] ?? Number.NaN);
    return {
      fsyncs: value(/^maildird_store_fsyncs_total (\d+)$/m),
      delivered: value(/^maildird_messages_delivered_total\{proto="smtp"\} (\d+)$/m),
    };
  };

  const warm = await smtpSource(smtpPort, WARMUP);
  if (!warm.ok) throw new Error(`warm-up against ${name} failed: ${warm.output}\n${Buffer.concat(err).toString('utf8')}`);
  return {
    name,
    async run(round) {
      const before = await metrics();
      const files0 = await countFiles(newDir);
      const cpu0 = treeCpuSeconds(child.pid ?? 0);
      const load = await smtpSource(smtpPort, MESSAGES);
      const cpu = treeCpuSeconds(child.pid ?? 0) - cpu0;
      const after = await metrics();
      const files = (await countFiles(newDir)) - files0;
      if (!load.ok) throw new Error(`smtp-source against ${name} failed: ${load.output}\n${Buffer.concat(err).toString('utf8').slice(-2000)}`);
      const counted = after.delivered - before.delivered;
      // smtp-source exits 0 only when every message got its 250; the files must all be there.
      if (files !== MESSAGES || (workers === 1 && counted !== MESSAGES)) {
        throw new Error(`${name}: ${counted} counted by /metrics, ${files} files in new/, of ${MESSAGES}`);
      }
      const fsyncs = counted === MESSAGES ? { fsyncsPerMessage: (after.fsyncs - before.fsyncs) / counted } : {};
      return row(name, round, MESSAGES, files, load, cpu, fsyncs);
    },
    stop: () => stopProcess(child, 15_000),
  };
}

const POSTFIX_MASTER_CF = (port: number) => `
127.0.0.1:${port} inet n - n - - smtpd${POSTFIX_SERVICES}virtual   unix  -       n       n       -       -       virtual
`;

function postfixMainCf(dir: string, uid: number, gid: number): string {
  return `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench
mydestination =
local_transport = error:no local delivery
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = example.org
virtual_mailbox_base = ${dir}/vmail
virtual_mailbox_maps = texthash:${dir}/vmailbox
virtual_uid_maps = static:${uid}
virtual_gid_maps = static:${gid}
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
biff = no
`;
}

/** The settings of the private instance worth reporting (PEERS.md: in_flow_delay throttles senders). */
const POSTFIX_REPORTED = ['mail_version', 'in_flow_delay', 'default_process_limit', 'virtual_destination_concurrency_limit', 'virtual_destination_recipient_limit', 'smtpd_client_connection_count_limit'];

function postfixId(name: string, flag: '-u' | '-g'): number {
  return Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
}

async function startPostfix(work: string): Promise<{ server: Server; settings: Record<string, string> }> {
  // Under the system temp folder: Postfix's socket paths must stay short.
  const dir = join(work, 'pf');
  const conf = join(dir, 'conf');
  for (const d of [conf, join(dir, 'queue'), join(dir, 'data'), join(dir, 'vmail')]) await mkdir(d, { recursive: true });
  await chmod(work, 0o755);
  await chmod(dir, 0o755);
  const uid = postfixId('nobody', '-u');
  const gid = postfixId('nobody', '-g');
  await chown(join(dir, 'data'), postfixId('postfix', '-u'), 0);
  await chown(join(dir, 'vmail'), uid, gid);
  await writeFile(join(dir, 'vmailbox'), `${RECIPIENT} bench/\n`);
  const port = await freePort();
  await writeFile(join(conf, 'main.cf'), postfixMainCf(dir, uid, gid));
  await writeFile(join(conf, 'master.cf'), POSTFIX_MASTER_CF(port));
  const stop = () => spawnSync('postfix', ['-c', conf, 'stop'], { encoding: 'utf8', timeout: 60_000 });
  atExit(() => void stop());
  const start = spawnSync('postfix', ['-c', conf, 'start'], { encoding: 'utf8', timeout: 60_000 });
  if (start.status !== 0) throw new Error(`postfix did not start: ${start.stderr}`);
  const settings: Record<string, string> = {};
  const shown = spawnSync('postconf', ['-x', '-c', conf, ...POSTFIX_REPORTED], { encoding: 'utf8' }).stdout;
  for (const line of shown.split('\n')) {
    const m = /^(\S+) = (.*)$/.exec(line);
    if (m) settings[m[1] as string] = m[2] as string;
  }
  const masterPid = async (): Promise<number> => Number((await readFile(join(dir, 'queue', 'pid', 'master.pid'), 'utf8')).trim());
  const newDir = join(dir, 'vmail', 'bench', 'new');
  await waitForPort(port);
  const warm = await smtpSource(port, WARMUP);
  if (!warm.ok) throw new Error(`warm-up against Postfix failed: ${warm.output}`);
  await waitForFiles(newDir, WARMUP, Date.now() + TIMEOUT_MS);
  return {
    settings,
    server: {
      name: `Postfix ${settings['mail_version'] ?? ''}`.trim(),
      async run(round) {
        const pid = await masterPid();
        const files0 = await countFiles(newDir);
        const cpu0 = treeCpuSeconds(pid);
        const startAt = process.hrtime.bigint();
        const load = await smtpSource(port, MESSAGES);
        if (!load.ok) throw new Error(`smtp-source against Postfix failed: ${load.output}`);
        const acceptedSeconds = load.seconds;
        const files = (await waitForFiles(newDir, files0 + MESSAGES, Date.now() + TIMEOUT_MS)) - files0;
        const seconds = ms(startAt) / 1000;
        const cpu = treeCpuSeconds(pid) - cpu0;
        if (files < MESSAGES) throw new Error(`Postfix delivered ${files} of ${MESSAGES} within the time bound`);
        return row(`Postfix ${settings['mail_version'] ?? ''}`.trim(), round, MESSAGES, files, { ...load, seconds }, cpu, {
          note: `client done after ${fmt(acceptedSeconds)} s; last file in new/ after ${fmt(seconds)} s`,
        });
      },
      async stop() {
        stop();
      },
    },
  };
}

// ------------------------------------------------------------------- main

if (!which('smtp-source') || !which('smtp-sink')) {
  console.log('bench:smtp needs smtp-source and smtp-sink (package postfix): apt-get install postfix');
  process.exit(0);
}
if (process.env.BENCH_SMTP_SKIP_BUILD !== '1') {
  console.log('building (tsc -p tsconfig.json) so bin/maildird runs the current source...');
  const built = spawnSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.json')], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (built.status !== 0) console.log(`tsc reported errors (dist/ may be stale):\n${built.stdout.slice(0, 2000)}`);
}

const postfixSkip = !which('postfix')
  ? 'postfix is not installed (apt-get install postfix)'
  : process.getuid?.() !== 0
    ? 'a private Postfix instance needs root'
    : undefined;

const work = await mkdtemp(join(tmpdir(), 'maildird-smtp-bench-'));
atExit(() => spawnSync('rm', ['-rf', work]));
// Each row's files in block groups of their own. This machine's ext4 has
// no journal, and without one ext4 will not reuse an inode freed in the
// last 1-6 minutes: every file creation scans past such inodes in its
// block group, under the directory's lock (recently_deleted() in
// fs/ext4/ialloc.c; perf showed it and the lock spinning as 40% of the CPU
// of a delivery loop). Postfix frees 2-3 queue files per message, so a row
// that shared a block group with Postfix's queue ran 20-55% slower right
// after a Postfix row (measured with 10,000 files freed next door). With
// the top-directory flag, ext4 spreads the servers' folders (maildird,
// maildird-2w, pf) over different groups; Postfix's queue and its Maildirs
// still share one, as on a real Postfix host. Nothing is deleted before
// the end of the run.
const isSpread = spawnSync('chattr', ['+T', work], { encoding: 'utf8' }).status === 0;
const environment = { loadavgBefore: loadavg(), pressureBefore: await pressure() };
console.log(`bench:smtp: ${MESSAGES} messages of ${PAYLOAD} bytes (payload), ${SESSIONS} sessions (smtp-source -d), ${ROUNDS} rounds`);
console.log(`load average ${loadavg().map((n) => n.toFixed(2)).join(' ')} on ${cpus().length} CPUs`);
console.log(
  isSpread
    ? 'each server in its own ext4 block groups (chattr +T on the work folder); nothing deleted until the end'
    : 'chattr +T failed (not ext4?): servers may share block groups',
);

const servers: Server[] = [];
const rows: Row[] = [];
let postfixSettings: Record<string, string> | undefined;
let oneAtATime = Number.NaN;
try {
  oneAtATime = await oneAtATimeRate(1_000, Buffer.alloc(PAYLOAD, 0x78), work);
  console.log(`one at a time (write 10 KB + fsync + rename + fsync new/, raw node:fs): ${fmt(oneAtATime)} msg/s`);

  const sink = await startSink();
  servers.push(sink);
  const raw = rawCeiling(work);
  const maildird = await startMaildird(work);
  servers.push(maildird);
  let maildird2: Server | undefined;
  if (await hasWorkersKey()) {
    maildird2 = await startMaildird(work, 2);
    servers.push(maildird2);
  } else {
    console.log('maildird (2 workers) skipped: this build has no `workers` config key yet');
  }
  let postfix: Server | undefined;
  if (postfixSkip === undefined) {
    const started = await startPostfix(work);
    postfix = started.server;
    postfixSettings = started.settings;
    servers.push(postfix);
  } else {
    console.log(`Postfix skipped: ${postfixSkip}`);
  }
  const report = (r: Row) =>
    console.log(`  ${r.server} round ${r.round}: ${fmt(r.perSecond)} msg/s (${r.delivered} in ${fmt(r.seconds)} s)${r.note ? `; ${r.note}` : ''}`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const server of round % 2 === 1 ? [sink, raw, maildird, maildird2, postfix] : [sink, raw, postfix, maildird2, maildird]) {
      if (server === undefined) continue;
      const r = await server.run(round);
      rows.push(r);
      report(r);
    }
  }
} finally {
  for (const server of servers.reverse()) await server.stop().catch((err: unknown) => console.error(`stopping ${server.name}: ${String(err)}`));
}

/** Totals over the rounds: messages / seconds, CPU per message averaged by message. */
function summary(server: string) {
  const mine = rows.filter((r) => r.server === server);
  if (mine.length === 0) return undefined;
  const delivered = mine.reduce((s, r) => s + r.delivered, 0);
  const seconds = mine.reduce((s, r) => s + r.seconds, 0);
  const avg = (f: (r: Row) => number | undefined) => {
    const values = mine.map(f).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : values.reduce((s, v) => s + v, 0) / values.length;
  };
  return {
    server,
    delivered,
    seconds,
    perSecond: delivered / seconds,
    perRound: mine.map((r) => r.perSecond),
    serverCpuMsPerMessage: avg((r) => r.serverCpuMsPerMessage),
    clientCpuMsPerMessage: avg((r) => r.clientCpuMsPerMessage),
    fsyncsPerMessage: avg((r) => r.fsyncsPerMessage),
  };
}

const names = [...new Set(rows.map((r) => r.server))];
const summaries = names.map(summary).filter((s) => s !== undefined);
const sinkSummary = summaries.find((s) => s.server.startsWith('smtp-sink'));
const maildirdSummary = summaries.find((s) => s.server === 'maildird');
const workersSummary = summaries.find((s) => s.server.startsWith('maildird ('));
const postfixSummary = summaries.find((s) => s.server.startsWith('Postfix'));
const ratio = maildirdSummary && postfixSummary ? maildirdSummary.perSecond / postfixSummary.perSecond : undefined;
const workersRatio = workersSummary && postfixSummary ? workersSummary.perSecond / postfixSummary.perSecond : undefined;
const HARAKA_FSYNC = 1_360;

console.log('');
console.log(
  table(
    ['server', 'msg/s', 'per round', 'server CPU ms/msg', 'client CPU ms/msg', 'fsyncs/msg'],
    summaries.map((s) => [
      s.server,
      fmt(s.perSecond),
      s.perRound.map((v) => fmt(v)).join(' / '),
      fmt(s.serverCpuMsPerMessage),
      fmt(s.clientCpuMsPerMessage),
      fmt(s.fsyncsPerMessage),
    ]),
  ),
);
console.log('');
/** maildird / Postfix within each round (the rows of one round ran minutes apart at most). */
function perRoundRatios(server: string | undefined): number[] {
  if (server === undefined || postfixSummary === undefined) return [];
  const ours = rows.filter((r) => r.server === server);
  return ours.flatMap((r) => {
    const peer = rows.find((p) => p.server === postfixSummary.server && p.round === r.round);
    return peer === undefined ? [] : [r.perSecond / peer.perSecond];
  });
}
const roundRatios = perRoundRatios(maildirdSummary?.server);
const workersRoundRatios = perRoundRatios(workersSummary?.server);
const listRatios = (values: number[]) => values.map((v) => `${v.toFixed(2)}x`).join(' / ');
if (ratio !== undefined) console.log(`maildird / Postfix: ${ratio.toFixed(2)}x (target >= 2x); by round ${listRatios(roundRatios)}`);
if (workersRatio !== undefined && workersSummary) {
  console.log(`${workersSummary.server} / Postfix: ${workersRatio.toFixed(2)}x; by round ${listRatios(workersRoundRatios)}`);
}
if (maildirdSummary) {
  console.log(`maildird vs Haraka-with-fsync reference (${HARAKA_FSYNC} msg/s, PEERS.md): ${(maildirdSummary.perSecond / HARAKA_FSYNC).toFixed(2)}x`);
  console.log(`maildird / one-at-a-time rate (${fmt(oneAtATime)} msg/s): ${(maildirdSummary.perSecond / oneAtATime).toFixed(2)}x`);
  const rawSummary = summaries.find((s) => s.server === RAW_CEILING);
  if (rawSummary) console.log(`maildird / disk ceiling (${RAW_CEILING}, ${fmt(rawSummary.perSecond)} msg/s): ${(maildirdSummary.perSecond / rawSummary.perSecond).toFixed(2)}`);
  if (sinkSummary) console.log(`maildird / client ceiling (smtp-sink ${fmt(sinkSummary.perSecond)} msg/s): ${(maildirdSummary.perSecond / sinkSummary.perSecond).toFixed(2)}`);
}
if (postfixSettings) console.log(`Postfix settings: ${Object.entries(postfixSettings).map(([k, v]) => `${k}=${v}`).join(', ')}`);
console.log(`load average after: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);

const results = {
  date: new Date().toISOString(),
  host: hostname(),
  node: process.version,
  cpus: cpus().length,
  command: `smtp-source -c -d -l ${PAYLOAD} -m ${MESSAGES} -s ${SESSIONS} -f ${SENDER} -t ${RECIPIENT} 127.0.0.1:PORT`,
  messages: MESSAGES,
  rounds: ROUNDS,
  oneAtATimePerSecond: oneAtATime,
  summaries,
  rows,
  maildirdOverPostfix: ratio,
  maildirdWorkersOverPostfix: workersRatio,
  maildirdOverPostfixByRound: roundRatios,
  maildirdWorkersOverPostfixByRound: workersRoundRatios,
  harakaWithFsyncReference: HARAKA_FSYNC,
  postfix: postfixSettings ?? { skipped: postfixSkip },
  environment: { ...environment, loadavgAfter: loadavg(), pressureAfter: await pressure() },
};
const out = resolve(here, 'results', 'smtp.json');
await mkdir(dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`written to ${out}`);
await rm(work, { recursive: true, force: true });
