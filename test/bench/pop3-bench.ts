/**
 * npm run bench:pop3 — maildird's POP3 server beside Dovecot pop3d, in one
 * run, on one generated Maildir tree (issue 3, "Done when"):
 *  1. one client downloading 10,000 messages of ~20 KB (USER/PASS, UIDL,
 *     RETR all, QUIT), warm, without pipelining and with 16 RETRs in flight;
 *  2. 50 concurrent clients, each on its own 1,000-message maildrop, warm,
 *     with connect (to greeting) latency p50/p99;
 *  3. login + STAT on a 100,000-message maildrop: cold (maildird: fresh
 *     process, no listing cache file; Dovecot: index files and
 *     dovecot-uidlist deleted), warm (same server process), and warm after a
 *     server restart (maildird then reads its cache file);
 *  4. new-connection latency, connect to greeting, sequential.
 * maildird runs twice, as one process and with `workers: 2` (a node:cluster
 * primary and two workers): each row comes as a pair, the second labelled
 * "md 2 workers" (id suffix -2w), each beside the same Dovecot figures.
 * The load client is C (test/bench/pop3-load.c, compiled here with cc -O2);
 * its ceiling against an in-memory responder (test/bench/null-pop3.c) is
 * printed beside every ratio, so a ratio is never the client's limit in
 * disguise. maildird runs as its own process (the built CLI, `maildird
 * serve`), so the driver's CPU does not count against it. Peak memory:
 * maildird's VmHWM (reset before each row), Dovecot's summed RSS over all its
 * processes (sampled every 200 ms). CPU seconds of each server and of the
 * client are reported per row.
 *
 * "Warm" means the files were just read (this machine's page cache drops
 * files idle for about a minute) and the server has seen the maildrop once
 * (its caches are built). "Cold" is cold for the server, not the kernel: the
 * maildrop is read just before, for both servers alike.
 *
 * Figures go to stdout and to test/bench/results/pop3.json. Environment:
 * BENCH_REPEAT (attempts per row, default 5; the median is reported: this
 * shared machine swings by +-30 % between attempts),
 * BENCH_QUICK=1 (small tree, a smoke run, nothing written), BENCH_SKIP_DOVECOT=1,
 * BENCH_KEEP=1 (keep the temporary folder).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTree, storedMessage, wireForm, type MaildropInfo, type MaildropSpec } from './helpers/pop3-tree.js';
import { dovecotVersion, removeDovecotState, writeDovecotConfig } from './helpers/dovecot.js';
import {
  compileTools,
  runClient,
  startNullServer,
  type ConnectResult,
  type DownloadResult,
  type StatResult,
  type Tools,
} from './helpers/load-client.js';
import {
  atExit,
  freePort,
  peakRss,
  resetPeakRss,
  startProcess,
  stopProcess,
  treeCpuSeconds,
  TreeRssSampler,
  waitForGreeting,
} from './helpers/processes.js';
import { fmt, median, percentile, table } from './helpers/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const isQuick = process.env.BENCH_QUICK === '1';
const REPEAT = Math.max(1, Math.min(20, Number(process.env.BENCH_REPEAT ?? 5)));
const SIZE = isQuick
  ? { single: 1_000, clients: 10, perClient: 100, huge: 5_000, messageBytes: 20_000, hugeMessageBytes: 2_000, connects: 50 }
  : { single: 10_000, clients: 50, perClient: 1_000, huge: 100_000, messageBytes: 20_000, hugeMessageBytes: 2_000, connects: 200 };
const DEPTH = 16;
const STAT_WARM_REPEAT = 5;
/** Mail belongs to this unprivileged uid/gid: Dovecot refuses to access mail as root. */
const MAIL_UID = 5000;
const PASSWORD = 'bench';

/** maildird as one process, maildird with `workers: 2` (node:cluster), Dovecot. */
type ServerName = 'maildird' | 'maildird-2w' | 'Dovecot';

interface Server {
  readonly name: ServerName;
  readonly port: number;
  /** One process (VmHWM is its peak) or a tree of processes (summed RSS, sampled). */
  readonly isSingleProcess: boolean;
  /** The command line that runs it, for the report. */
  readonly command: string;
  pid(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Remove this server's own caches for a maildrop (the server must be stopped or idle). */
  makeCold(dir: string): void;
}

interface Measured<T> {
  readonly result: T;
  readonly serverCpuS: number;
  readonly peakRssBytes: number;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** The CLI runs from dist/: rebuild it when src/ is newer, so the figures are for the code in the tree. */
function ensureBuilt(): void {
  const main = join(repo, 'dist', 'cli', 'main.js');
  let built = 0;
  try {
    built = statSync(main).mtimeMs;
  } catch {
    // not built yet
  }
  if (built >= newestMtime(join(repo, 'src'))) return;
  log('dist/ is older than src/: running npm run build');
  const result = spawnSync('npm', ['run', 'build'], { cwd: repo, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) {
    try {
      statSync(main);
    } catch {
      throw new Error(`npm run build failed and dist/cli/main.js is missing:\n${result.stdout}\n${result.stderr}`);
    }
    log(`warning: npm run build reported errors (others' files mid-edit?); using what it emitted:\n${result.stdout.slice(-2000)}`);
  }
}

/** maildird as `node bin/maildird serve --config FILE`, logging (info, pino JSON) to a file; `workers` processes. */
function maildirdServer(workDir: string, root: string, passwdFile: string, port: number, workers: 1 | 2): Server {
  const name: ServerName = workers === 1 ? 'maildird' : 'maildird-2w';
  const config = join(workDir, `${name}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      {
        root,
        users: passwdFile,
        hostname: 'bench.example',
        listeners: { pop3: `127.0.0.1:${port}`, smtp: false },
        logLevel: 'info',
        limits: { maxConnections: 10_000, maxConnectionsPerIp: 10_000 },
        workers,
      },
      null,
      2,
    ),
  );
  const logFile = join(workDir, `${name}.log`);
  let child: ChildProcess | undefined;
  return {
    name,
    port,
    // With workers: the primary and its workers, RSS summed over the tree.
    isSingleProcess: workers === 1,
    command: `node bin/maildird serve --config ${config}`,
    pid: () => child?.pid ?? 0,
    async start() {
      const fd = openSync(logFile, 'a');
      try {
        child = startProcess(process.execPath, [join(repo, 'bin', 'maildird'), 'serve', '--config', config], ['ignore', 'ignore', fd]);
      } finally {
        closeSync(fd);
      }
      await waitForGreeting(port, child);
    },
    async stop() {
      if (child !== undefined) await stopProcess(child);
      child = undefined;
    },
    makeCold(dir) {
      rmSync(join(dir, 'maildird-listing.cache'), { force: true });
    },
  };
}

/** Dovecot pop3d in the foreground (`dovecot -F -c FILE`): the master's PID is ours to stop. */
function dovecotServer(workDir: string, root: string, passwdFile: string, port: number): Server {
  const config = writeDovecotConfig({ workDir, root, passwdFile, port, uid: MAIL_UID, gid: MAIL_UID });
  let child: ChildProcess | undefined;
  return {
    name: 'Dovecot',
    port,
    isSingleProcess: false,
    command: `dovecot -F -c ${config}`,
    pid: () => child?.pid ?? 0,
    async start() {
      child = startProcess('dovecot', ['-F', '-c', config], ['ignore', 'ignore', 'inherit']);
      await waitForGreeting(port, child);
    },
    async stop() {
      if (child !== undefined) await stopProcess(child);
      child = undefined;
    },
    makeCold(dir) {
      removeDovecotState(dir);
    },
  };
}

async function measure<T>(server: Server, run: () => Promise<T>): Promise<Measured<T>> {
  const pid = server.pid();
  if (server.isSingleProcess) resetPeakRss(pid);
  const sampler = new TreeRssSampler(pid, server.isSingleProcess ? 100 : 200);
  const cpuBefore = treeCpuSeconds(pid);
  let result: T;
  let sampled = 0;
  try {
    result = await run();
    // Let a per-session process exit and be reaped, so its CPU shows in the master's cutime.
    if (!server.isSingleProcess) await new Promise((r) => setTimeout(r, 200));
  } finally {
    sampled = sampler.stop();
  }
  const serverCpuS = treeCpuSeconds(pid) - cpuBefore;
  const peakRssBytes = server.isSingleProcess ? Math.max(peakRss(pid), sampled) : sampled;
  return { result, serverCpuS, peakRssBytes };
}

// ---- one run ----

interface Cell {
  readonly value: number;
  readonly attempts: readonly number[];
}

interface Row {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly maildird?: Cell;
  readonly dovecot?: Cell;
  readonly ceiling?: Cell;
  /** maildird / Dovecot, of the values as shown. */
  readonly ratio?: number;
  /** How many times better maildird is (rates: md/dc; latencies: dc/md). Target 1.2. */
  readonly advantage?: number;
}

interface Resources {
  readonly peakRssMB: number;
  readonly serverCpuS: number;
  readonly clientCpuS: number;
}

const rows: Row[] = [];
let commands: Record<string, string> = {};
const resources: Record<string, Partial<Record<ServerName | 'null', Resources>>> = {};
const checks: string[] = [];
/** The machine's 1/5/15-minute load averages when each part started (it is shared: say how busy it was). */
const loads: { readonly at: string; readonly load: readonly number[] }[] = [];

function noteLoad(at: string): void {
  loads.push({ at, load: loadavg().map((l) => Math.round(l * 100) / 100) });
}

function cell(attempts: readonly number[]): Cell | undefined {
  return attempts.length === 0 ? undefined : { value: median(attempts), attempts };
}

function addRow(
  id: string,
  label: string,
  unit: string,
  better: 'higher' | 'lower',
  values: Partial<Record<ServerName | 'null', readonly number[]>>,
): void {
  const maildird = cell(values.maildird ?? []);
  const dovecot = cell(values.Dovecot ?? []);
  const ceiling = cell(values.null ?? []);
  const ratio = maildird !== undefined && dovecot !== undefined ? maildird.value / dovecot.value : undefined;
  const advantage = ratio === undefined ? undefined : better === 'higher' ? ratio : 1 / ratio;
  rows.push({
    id,
    label,
    unit,
    better,
    ...(maildird ? { maildird } : {}),
    ...(dovecot ? { dovecot } : {}),
    ...(ceiling ? { ceiling } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(advantage !== undefined ? { advantage } : {}),
  });
}

/**
 * The row for maildird as one process (`id`), then the same measurement
 * for maildird with 2 workers (`id-2w`), each beside Dovecot.
 */
function addRows(
  id: string,
  label: string,
  unit: string,
  better: 'higher' | 'lower',
  values: Partial<Record<ServerName | 'null', readonly number[]>>,
): void {
  const others = { ...(values.Dovecot ? { Dovecot: values.Dovecot } : {}), ...(values.null ? { null: values.null } : {}) };
  addRow(id, label, unit, better, { ...others, ...(values.maildird ? { maildird: values.maildird } : {}) });
  const two = values['maildird-2w'];
  if (two !== undefined && two.length > 0) addRow(`${id}-2w`, `${label}, md 2 workers`, unit, better, { ...others, maildird: two });
}

class Accumulator {
  readonly #peak = new Map<string, number>();
  readonly #serverCpu = new Map<string, number>();
  readonly #clientCpu = new Map<string, number>();

  add(who: string, m: { serverCpuS?: number; peakRssBytes?: number }, clientCpuMs: number): void {
    this.#peak.set(who, Math.max(this.#peak.get(who) ?? 0, m.peakRssBytes ?? 0));
    this.#serverCpu.set(who, (this.#serverCpu.get(who) ?? 0) + (m.serverCpuS ?? 0));
    this.#clientCpu.set(who, (this.#clientCpu.get(who) ?? 0) + clientCpuMs / 1000);
  }

  /** Per attempt: peak over attempts, CPU averaged over attempts. */
  done(id: string, attempts: number): void {
    const out: Partial<Record<ServerName | 'null', Resources>> = {};
    for (const who of this.#clientCpu.keys()) {
      out[who as ServerName | 'null'] = {
        peakRssMB: (this.#peak.get(who) ?? 0) / 1e6,
        serverCpuS: (this.#serverCpu.get(who) ?? 0) / attempts,
        clientCpuS: (this.#clientCpu.get(who) ?? 0) / attempts,
      };
    }
    resources[id] = out;
  }
}

function checkDownload(who: string, r: DownloadResult, drops: readonly MaildropInfo[]): void {
  const messages = drops.reduce((n, d) => n + d.count, 0);
  const octets = drops.reduce((n, d) => n + d.retrOctets, 0);
  if (r.messages !== messages || r.octets !== octets) {
    const problem = `${who}: got ${r.messages} messages / ${r.octets} octets, expected ${messages} / ${octets}`;
    checks.push(problem);
    log(`  BYTES MISMATCH ${problem}`);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'maildird-pop3-bench-'));
  chmodSync(workDir, 0o755); // Dovecot's unprivileged processes must reach the tree and the passwd file
  const isKept = process.env.BENCH_KEEP === '1';
  // Also on Ctrl-C, after the children are killed (helpers/processes.ts).
  const removeWorkDir = () => (isKept ? undefined : rmSync(workDir, { recursive: true, force: true }));
  atExit(removeWorkDir);
  const servers: Server[] = [];
  let nullServer: ChildProcess | undefined;
  try {
    const tools = compileTools(here, workDir);
    ensureBuilt();
    const dovecot = process.env.BENCH_SKIP_DOVECOT === '1' ? undefined : dovecotVersion();
    if (dovecot === undefined) log('Dovecot is not installed (dovecot-pop3d) or BENCH_SKIP_DOVECOT=1: the Dovecot column is skipped.');

    // ---- the tree, generated once ----
    const root = join(workDir, 'mail');
    const specs: MaildropSpec[] = [
      { user: 'single', count: SIZE.single, messageBytes: SIZE.messageBytes },
      ...Array.from({ length: SIZE.clients }, (_, i) => ({
        user: `c${String(i).padStart(2, '0')}`,
        count: SIZE.perClient,
        messageBytes: SIZE.messageBytes,
      })),
      { user: 'huge', count: SIZE.huge, messageBytes: SIZE.hugeMessageBytes },
    ];
    let t = Date.now();
    const drops = buildTree(root, specs);
    const drop = (user: string) => drops.get(user) as MaildropInfo;
    const clientUsers = specs.filter((s) => s.user.startsWith('c')).map((s) => s.user);
    const total = [...drops.values()].reduce((n, d) => n + d.storedOctets, 0);
    log(`tree: ${[...drops.values()].reduce((n, d) => n + d.count, 0)} messages, ${fmt(total / 1e6)} MB in ${fmt((Date.now() - t) / 1000)} s (${root})`);
    const passwdFile = join(workDir, 'passwd');
    writeFileSync(passwdFile, specs.map((s) => `${s.user}:{PLAIN}${PASSWORD}::::::\n`).join(''), { mode: 0o644 });
    if (dovecot !== undefined) {
      const chown = spawnSync('chown', ['-R', `${MAIL_UID}:${MAIL_UID}`, root], { timeout: 300_000 });
      if (chown.status !== 0) throw new Error(`chown -R ${MAIL_UID} ${root} failed`);
    }
    const messageFile = join(workDir, 'message.wire');
    writeFileSync(messageFile, wireForm(storedMessage('single', 0, SIZE.messageBytes).bytes));

    // ---- servers ----
    servers.push(maildirdServer(workDir, root, passwdFile, await freePort(), 1));
    servers.push(maildirdServer(workDir, root, passwdFile, await freePort(), 2));
    if (dovecot !== undefined) servers.push(dovecotServer(workDir, root, passwdFile, await freePort()));
    for (const s of servers) await s.start();
    const nul = await startNullServer(tools, messageFile, SIZE.perClient, { single: SIZE.single, huge: SIZE.huge });
    nullServer = nul.child;
    for (const s of servers) log(`${s.name} on 127.0.0.1:${s.port}: ${s.command}`);
    log(`null responder on 127.0.0.1:${nul.port}; load client ${tools.client}; ${REPEAT} attempts per row (median shown)`);
    commands = Object.fromEntries(servers.map((s) => [s.name, s.command]));

    const warm = (users: readonly string[]) =>
      runClient<unknown>(tools, ['warm', ...users.map((u) => drop(u).dir)]);
    const client = <T>(port: number, args: readonly string[]) => runClient<T>(tools, [args[0] as string, '-p', String(port), '-w', PASSWORD, ...args.slice(1)]);
    const orderFor = (attempt: number) => (attempt % 2 === 0 ? servers : [...servers].reverse());

    // Each server sees every maildrop once: Dovecot builds its index, maildird its listing cache.
    t = Date.now();
    for (const s of servers) await client(s.port, ['prime', 'single', ...clientUsers]);
    log(`primed the servers in ${fmt((Date.now() - t) / 1000)} s`);

    // ---- 1. one client, 10,000 x 20 KB ----
    for (const depth of [1, DEPTH]) {
      noteLoad(depth === 1 ? 'row 1' : 'row 1, pipelined');
      const id = depth === 1 ? 'single' : 'single-pipelined';
      const rates: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [], null: [] };
      const mbs: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [], null: [] };
      const acc = new Accumulator();
      for (let attempt = 0; attempt < REPEAT; attempt++) {
        for (const s of orderFor(attempt)) {
          await warm(['single']);
          const m = await measure(s, () => client<DownloadResult>(s.port, ['download', '-d', String(depth), 'single']));
          checkDownload(`${s.name} ${id}`, m.result, [drop('single')]);
          rates[s.name]?.push((m.result.messages / m.result.wallMs) * 1000);
          mbs[s.name]?.push(m.result.octets / m.result.wallMs / 1000);
          acc.add(s.name, m, m.result.cpuUserMs + m.result.cpuSysMs);
        }
        const n = await client<DownloadResult>(nul.port, ['download', '-d', String(depth), 'single']);
        rates.null?.push((n.messages / n.wallMs) * 1000);
        mbs.null?.push(n.octets / n.wallMs / 1000);
        acc.add('null', {}, n.cpuUserMs + n.cpuSysMs);
      }
      acc.done(id, REPEAT);
      const what = depth === 1 ? 'no pipelining' : `${DEPTH} RETRs pipelined`;
      addRows(id, `1 client, ${fmt(SIZE.single)} x 20 KB, ${what}`, 'msg/s', 'higher', rates);
      addRows(`${id}-mbs`, `  same, MB/s`, 'MB/s', 'higher', mbs);
      log(`row 1 (${what}) done`);
    }

    // ---- 2. 50 concurrent clients ----
    {
      noteLoad('row 2');
      const rates: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [], null: [] };
      const connects: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [], null: [] };
      const acc = new Accumulator();
      const clientDrops = clientUsers.map(drop);
      for (let attempt = 0; attempt < REPEAT; attempt++) {
        for (const s of orderFor(attempt)) {
          await warm(clientUsers);
          const m = await measure(s, () => client<DownloadResult>(s.port, ['download', '-d', '1', ...clientUsers]));
          checkDownload(`${s.name} concurrent`, m.result, clientDrops);
          rates[s.name]?.push((m.result.messages / m.result.wallMs) * 1000);
          connects[s.name]?.push(...m.result.connectMs);
          acc.add(s.name, m, m.result.cpuUserMs + m.result.cpuSysMs);
        }
        const n = await client<DownloadResult>(nul.port, ['download', '-d', '1', ...clientUsers]);
        rates.null?.push((n.messages / n.wallMs) * 1000);
        connects.null?.push(...n.connectMs);
        acc.add('null', {}, n.cpuUserMs + n.cpuSysMs);
      }
      acc.done('concurrent', REPEAT);
      addRows('concurrent', `${SIZE.clients} clients, own ${fmt(SIZE.perClient)}-msg maildrop each`, 'msg/s', 'higher', rates);
      const pct = (p: number) => Object.fromEntries(Object.entries(connects).map(([k, v]) => [k, v.length ? [percentile(v, p)] : []]));
      addRows('concurrent-connect-p50', `  connect to greeting, p50`, 'ms', 'lower', pct(50));
      addRows('concurrent-connect-p99', `  connect to greeting, p99`, 'ms', 'lower', pct(99));
      log('row 2 done');
    }

    // ---- 3. login + STAT on 100,000 messages ----
    {
      noteLoad('row 3');
      const cold: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [] };
      const warmSame: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [], null: [] };
      const warmRestart: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [] };
      const acc = new Accumulator();
      const huge = drop('huge');
      const stat = async (s: Server, repeat: number, into: number[]) => {
        const m = await measure(s, () => client<StatResult>(s.port, ['stat', '-r', String(repeat), 'huge']));
        if (m.result.messages !== huge.count) {
          checks.push(`${s.name} STAT: ${m.result.messages} messages, expected ${huge.count}`);
          log(`  COUNT MISMATCH ${s.name} STAT ${m.result.messages} != ${huge.count}`);
        }
        into.push(repeat === 1 ? (m.result.statMs[0] as number) : median(m.result.statMs));
        acc.add(s.name, m, m.result.cpuUserMs + m.result.cpuSysMs);
      };
      for (let attempt = 0; attempt < REPEAT; attempt++) {
        for (const s of orderFor(attempt)) {
          // Cold: a fresh server process (Dovecot has one per session anyway) without its caches.
          await s.stop();
          s.makeCold(huge.dir);
          await s.start();
          await warm(['huge']);
          await stat(s, 1, cold[s.name] as number[]);
          await stat(s, STAT_WARM_REPEAT, warmSame[s.name] as number[]);
          await s.stop();
          await s.start();
          await warm(['huge']);
          await stat(s, 1, warmRestart[s.name] as number[]);
        }
        const n = await client<StatResult>(nul.port, ['stat', '-r', String(STAT_WARM_REPEAT), 'huge']);
        warmSame.null?.push(median(n.statMs));
        acc.add('null', {}, n.cpuUserMs + n.cpuSysMs);
      }
      acc.done('stat', REPEAT);
      const n = fmt(SIZE.huge);
      addRows('stat-cold', `login + STAT, ${n} msgs, cold`, 'ms', 'lower', cold);
      addRows('stat-warm', `login + STAT, ${n} msgs, warm`, 'ms', 'lower', warmSame);
      addRows('stat-warm-restart', `login + STAT, ${n} msgs, warm, server restarted`, 'ms', 'lower', warmRestart);
      log('row 3 done');
    }

    // ---- 4. new connections ----
    {
      noteLoad('row 4');
      const lat: Record<string, number[]> = { maildird: [], 'maildird-2w': [], Dovecot: [], null: [] };
      const acc = new Accumulator();
      for (let attempt = 0; attempt < REPEAT; attempt++) {
        for (const s of orderFor(attempt)) {
          const m = await measure(s, () => client<ConnectResult>(s.port, ['connect', '-n', String(SIZE.connects)]));
          lat[s.name]?.push(...m.result.connectMs);
          acc.add(s.name, m, m.result.cpuUserMs + m.result.cpuSysMs);
        }
        const n = await client<ConnectResult>(nul.port, ['connect', '-n', String(SIZE.connects)]);
        lat.null?.push(...n.connectMs);
        acc.add('null', {}, n.cpuUserMs + n.cpuSysMs);
      }
      acc.done('connect', REPEAT);
      const pct = (p: number) => Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, v.length ? [percentile(v, p)] : []]));
      addRows('connect-p50', `new connection to greeting, p50 (${SIZE.connects} x ${REPEAT})`, 'ms', 'lower', pct(50));
      addRows('connect-p99', `new connection to greeting, p99`, 'ms', 'lower', pct(99));
      log('row 4 done');
    }

    noteLoad('end');
    report({ dovecot, durationS: (Date.now() - started) / 1000 });
  } finally {
    if (nullServer !== undefined) await stopProcess(nullServer, 2_000);
    for (const s of servers) await s.stop();
    removeWorkDir();
    if (isKept) log(`kept ${workDir}`);
  }
}

/** Which code was measured: the commit, and the src/ files that differ from it. */
function sourceState(): { commit: string; uncommittedSrc: string[] } {
  const git = (args: string[]) => spawnSync('git', args, { cwd: repo, encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
  return {
    commit: git(['rev-parse', '--short', 'HEAD']).trim(),
    uncommittedSrc: git(['status', '--porcelain', '--', 'src'])
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3)),
  };
}

function report(meta: { dovecot: string | undefined; durationS: number }): void {
  const results = {
    date: new Date().toISOString(),
    source: sourceState(),
    host: hostname(),
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    node: process.version,
    dovecot: meta.dovecot ?? null,
    commands,
    attemptsPerRow: REPEAT,
    quick: isQuick,
    sizes: SIZE,
    pipelineDepth: DEPTH,
    durationS: meta.durationS,
    notes: [
      'median of the attempts; ratio = maildird/Dovecot of the values; advantage = how many times better maildird is (target 1.2)',
      'ceiling = the C client against an in-memory responder (null-pop3.c) on the same machine',
      'warm: files read just before, caches built by an earlier session; cold: server caches removed, fresh server process',
      'maildird: one process; "md 2 workers" rows: maildird with workers: 2 (a node:cluster primary and 2 workers), same tree, same client',
      'maildird peak RSS: VmHWM of its one process (reset before each row); with 2 workers and Dovecot: summed RSS of all their processes, sampled every 200 ms',
      'CPU per attempt: server from /proc utime+stime (Dovecot: every process of the instance, reaped ones included), client from getrusage',
      `STAT maildrop messages are ~${SIZE.hugeMessageBytes} bytes (listing never opens them); download messages ~${SIZE.messageBytes} bytes`,
    ],
    loadAverage: loads,
    rows,
    resources,
    checks,
  };
  const shown = (c: Cell | undefined) => (c === undefined ? '-' : fmt(c.value));
  log('');
  log(`maildird bench:pop3 (${results.node}, ${results.cpus}, ${meta.dovecot ?? 'no Dovecot'})`);
  log(
    table(
      ['row', 'unit', 'maildird', 'Dovecot', 'md/Dovecot', 'advantage', 'client ceiling'],
      rows.map((r) => [
        r.label,
        r.unit,
        shown(r.maildird),
        shown(r.dovecot),
        r.ratio === undefined ? '-' : r.ratio.toFixed(2),
        r.advantage === undefined ? '-' : `${r.advantage.toFixed(2)}x${r.advantage < 1.2 ? ' <1.2' : ''}`,
        shown(r.ceiling),
      ]),
    ),
  );
  log('');
  log('advantage: how many times better maildird is than Dovecot on the row (rates: maildird/Dovecot; latencies: Dovecot/maildird).');
  log('');
  const res = (id: string, who: ServerName | 'null', key: keyof Resources) => fmt(resources[id]?.[who]?.[key]);
  log(
    table(
      ['resources per attempt', 'md peak RSS MB', 'md 2w peak RSS MB', 'Dovecot peak RSS MB', 'md CPU s', 'md 2w CPU s', 'Dovecot CPU s', 'client CPU s (md)', 'client CPU s (Dovecot)', 'client CPU s (null)'],
      Object.keys(resources).map((id) => [
        id,
        res(id, 'maildird', 'peakRssMB'),
        res(id, 'maildird-2w', 'peakRssMB'),
        res(id, 'Dovecot', 'peakRssMB'),
        res(id, 'maildird', 'serverCpuS'),
        res(id, 'maildird-2w', 'serverCpuS'),
        res(id, 'Dovecot', 'serverCpuS'),
        res(id, 'maildird', 'clientCpuS'),
        res(id, 'Dovecot', 'clientCpuS'),
        res(id, 'null', 'clientCpuS'),
      ]),
    ),
  );
  log(`\nload average (1/5/15 min): ${loads.map((l) => `${l.at} ${l.load.join('/')}`).join('; ')}`);
  if (checks.length > 0) log(`\nCHECKS FAILED:\n${checks.join('\n')}`);
  if (isQuick) {
    log(`\nquick run (${fmt(meta.durationS)} s): results not written`);
    return;
  }
  const out = resolve(here, 'results', 'pop3.json');
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`\nwritten to ${out} (${fmt(meta.durationS)} s)`);
}

await main();
