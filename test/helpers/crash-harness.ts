/**
 * Crash consistency (issue 6, DESIGN invariants 1 and 2): run `maildird
 * serve` as a real child on a temporary tree, drive concurrent SMTP
 * deliveries (each with a unique Message-ID) and POP3 DELE+QUIT sessions,
 * SIGKILL the server at a seeded random moment, restart it and check the
 * tree against what the clients were told:
 *
 * - every message acknowledged with 250 exists exactly once;
 * - every message whose QUIT got `+OK` is in Trash (trash mode) or gone
 *   (expunge mode), and not in the maildrop;
 * - a message whose QUIT got no answer is in exactly one place (trash
 *   mode) or in the maildrop or gone (expunge mode), never in both or neither;
 * - a message never acknowledged exists at most once;
 * - the next login of every user succeeds at once (no `-ERR [IN-USE]` from
 *   the dead server's lock), and after it no tmp/ file, batch journal, lock
 *   or cache temp file is left.
 *
 * SIGKILL keeps the page cache, so this shows the ordering and recovery
 * logic, not durability against power loss: the fsync order is asserted
 * separately through the FsLayer (test/fuzz/ack-order.test.ts).
 *
 * The kill moments come from a seeded PRNG; where in the server's work a
 * kill lands still depends on the machine, so the figures (how many QUITs
 * were cut, ...) vary between runs while the invariants must always hold.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { prng } from '../fuzz/support/seed.js';
import { ServeProcess, portOf } from './cli-run.js';

export type DeletionMode = 'trash' | 'expunge';

export interface CrashOptions {
  /** An empty folder for the tree, config and users file. */
  readonly dir: string;
  readonly mode: DeletionMode;
  readonly seed: number;
  readonly kills: number;
  readonly users?: number;
  readonly smtpWorkers?: number;
  readonly pop3Workers?: number;
  /** Range of the delay between the server being ready and the kill. */
  readonly minRunMs?: number;
  readonly maxRunMs?: number;
  /** Called after every cycle (progress output in the stress runner). */
  readonly onCycle?: (cycle: number, figures: CrashFigures) => void;
}

export interface CrashFigures {
  mode: DeletionMode;
  seed: number;
  kills: number;
  /** SMTP transactions whose end of data was sent. */
  deliveriesSent: number;
  /** ... and answered 250. */
  acknowledged: number;
  /** Sent, no answer before the kill: may exist (once) or not. */
  unacknowledgedSeen: number;
  unacknowledgedMissing: number;
  /** POP3 QUITs answered +OK, and the messages they removed. */
  quitOk: number;
  deletedConfirmed: number;
  /** QUITs sent with DELEs pending that got no answer, and how each message ended up. */
  quitCut: number;
  cutDeletedApplied: number;
  cutDeletedNotApplied: number;
  /** Logins refused after a restart (must stay 0). */
  loginsRefused: number;
  /** Lost: acknowledged and not deleted, but not in the maildrop. */
  lost: number;
  /** A message found more than once (maildrop + Trash). */
  duplicated: number;
  /** Anything else that broke an invariant: tmp/journal/lock leftovers, a confirmed deletion still in the maildrop, ... */
  violations: string[];
  seconds: number;
}

const PASSWORD = 'crash-pw';

/** A user's messages on disk by Message-ID, maildrop (new/ + cur/) and Trash (.Trash/cur + new) apart. */
interface UserScan {
  maildrop: Map<string, number>;
  trash: Map<string, number>;
  leftovers: string[];
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function messageIdOf(file: string): string | undefined {
  const text = readFileSync(file, 'latin1');
  const head = text.slice(0, Math.max(0, text.indexOf('\n\n')) || text.length);
  return /^Message-ID: <([^>]+)>/im.exec(head)?.[1];
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function scanUser(userDir: string): UserScan {
  const scan: UserScan = { maildrop: new Map(), trash: new Map(), leftovers: [] };
  for (const [sub, into] of [
    ['new', scan.maildrop],
    ['cur', scan.maildrop],
    ['.Trash/new', scan.trash],
    ['.Trash/cur', scan.trash],
  ] as const) {
    for (const name of listDir(join(userDir, sub))) {
      const id = messageIdOf(join(userDir, sub, name));
      if (id !== undefined) count(into, id);
    }
  }
  for (const name of listDir(join(userDir, 'tmp'))) scan.leftovers.push(`tmp/${name}`);
  for (const name of listDir(join(userDir, '.Trash/tmp'))) scan.leftovers.push(`.Trash/tmp/${name}`);
  for (const name of listDir(userDir)) {
    if (name === 'maildird-batch.journal' || name === 'maildird.lock' || name.endsWith('.tmp')) scan.leftovers.push(name);
  }
  return scan;
}

export { prng } from '../fuzz/support/seed.js';

/** A CRLF line reader over a socket that fails every wait once the socket is gone. */
export class WireClient {
  readonly socket: Socket;
  #buffer = '';
  #closed = false;
  #waiter: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.#buffer += d;
      this.#wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  static open(port: number, localAddress?: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) });
      socket.once('connect', () => resolve(new WireClient(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The next line (without CRLF); rejects when the connection closes first. */
  async line(): Promise<string> {
    for (;;) {
      const at = this.#buffer.indexOf('\r\n');
      if (at !== -1) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 2);
        return line;
      }
      if (this.#closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  /** An SMTP reply (multi-line aware): its last line. */
  async smtpReply(): Promise<string> {
    for (;;) {
      const line = await this.line();
      if (!/^\d{3}-/.test(line)) return line;
    }
  }

  /** POP3 multi-line body up to the terminating dot. */
  async pop3Body(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === '.') return out;
      out.push(line.startsWith('..') ? line.slice(1) : line);
    }
  }

  write(text: string): void {
    if (!this.#closed) this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Model {
  /** Message-ID -> user, for every message whose end of data was sent. */
  sent: Map<string, string>;
  acked: Set<string>;
  /** Acknowledged messages removed by a QUIT that answered +OK (or found removed after a cut QUIT). */
  deleted: Set<string>;
  /** Message-IDs of a cut QUIT, to be settled by the next scan. */
  uncertain: Set<string>;
}

function writeTree(dir: string, mode: DeletionMode, users: number): void {
  mkdirSync(join(dir, 'mail'), { recursive: true });
  writeFileSync(
    join(dir, 'maildird.json'),
    JSON.stringify({
      listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: false },
      deletionMode: mode,
      hostname: 'crash.test',
      logLevel: 'warn',
      limits: { maxConnectionsPerIp: 1000, shutdownGraceSeconds: 0 },
    }),
  );
  const lines = Array.from({ length: users }, (_, i) => `u${i}:{PLAIN}${PASSWORD}\n`);
  writeFileSync(join(dir, 'passwd'), lines.join(''));
}

async function startServe(dir: string): Promise<{ serve: ServeProcess; pop3: number; smtp: number }> {
  const serve = ServeProcess.start([], { cwd: dir });
  const lines = await serve.ready();
  const pop3 = portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0');
  const smtp = portOf(lines.find((l) => l.name === 'smtp')?.address ?? ':0');
  return { serve, pop3, smtp };
}

/** One SMTP session sending `n` messages; records sent/acked as replies come. */
async function smtpSession(port: number, model: Model, figures: CrashFigures, nextId: () => string, user: string, n: number): Promise<void> {
  const c = await WireClient.open(port);
  try {
    if (!(await c.smtpReply()).startsWith('220')) return;
    c.write('EHLO crash.client\r\n');
    if (!(await c.smtpReply()).startsWith('250')) return;
    for (let i = 0; i < n; i++) {
      const id = nextId();
      c.write(`MAIL FROM:<s@remote.example>\r\nRCPT TO:<${user}@localhost>\r\nDATA\r\n`);
      const replies = [await c.smtpReply(), await c.smtpReply(), await c.smtpReply()];
      if (!replies[2]?.startsWith('354')) throw new Error(`unexpected replies ${replies.join(' | ')}`);
      const body = `Message-ID: <${id}>\r\nSubject: crash ${id}\r\n\r\n${'line of text\r\n'.repeat(1 + (id.length % 7))}.\r\n`;
      model.sent.set(id, user);
      figures.deliveriesSent++;
      c.write(body);
      const reply = await c.smtpReply();
      if (reply.startsWith('250')) {
        model.acked.add(id);
        figures.acknowledged++;
      } else {
        throw new Error(`delivery refused: ${reply}`);
      }
    }
    c.write('QUIT\r\n');
    await c.smtpReply();
  } finally {
    c.close();
  }
}

/** One POP3 session: log in, pick messages, read their Message-IDs with TOP, DELE them, QUIT. */
async function pop3Session(port: number, model: Model, figures: CrashFigures, user: string, random: () => number): Promise<void> {
  const c = await WireClient.open(port);
  try {
    if (!(await c.line()).startsWith('+OK')) return;
    c.write(`USER ${user}\r\n`);
    await c.line();
    c.write(`PASS ${PASSWORD}\r\n`);
    const pass = await c.line();
    if (!pass.startsWith('+OK')) {
      // [IN-USE] while another worker holds the maildrop: fine during the load.
      c.write('QUIT\r\n');
      return;
    }
    c.write('STAT\r\n');
    const total = Number(/^\+OK (\d+)/.exec(await c.line())?.[1] ?? 0);
    const ids: string[] = [];
    for (let n = 1; n <= total; n++) {
      if (random() > 0.5) continue;
      c.write(`TOP ${n} 0\r\n`);
      if (!(await c.line()).startsWith('+OK')) continue;
      const head = await c.pop3Body();
      const id = head.map((l) => /^Message-ID: <([^>]+)>/i.exec(l)?.[1]).find((x) => x !== undefined);
      c.write(`DELE ${n}\r\n`);
      if (!(await c.line()).startsWith('+OK')) throw new Error('DELE refused');
      if (id !== undefined) ids.push(id);
    }
    c.write('QUIT\r\n');
    let reply: string | undefined;
    try {
      reply = await c.line();
    } catch {
      reply = undefined;
    }
    if (reply?.startsWith('+OK')) {
      figures.quitOk++;
      for (const id of ids) {
        model.deleted.add(id);
        figures.deletedConfirmed++;
      }
    } else if (reply === undefined && ids.length > 0) {
      figures.quitCut++;
      for (const id of ids) model.uncertain.add(id);
    } else if (reply !== undefined) {
      throw new Error(`QUIT answered ${reply}`);
    }
  } finally {
    c.close();
  }
}

/**
 * Workers loop until `stopped()`; a connection error after the kill ends a
 * worker quietly, one before it is a failure of the run.
 */
async function worker(body: () => Promise<void>, stopped: () => boolean, errors: string[]): Promise<void> {
  for (let round = 0; round < 100_000 && !stopped(); round++) {
    try {
      await body();
    } catch (err) {
      if (!stopped()) errors.push(String((err as Error).message ?? err));
      return;
    }
  }
}

/** After a restart: every user logs in at once and quits; then the tree is checked against the model. */
async function check(dir: string, pop3: number, users: string[], model: Model, figures: CrashFigures, cycle: number): Promise<void> {
  for (const user of users) {
    const c = await WireClient.open(pop3);
    try {
      await c.line();
      c.write(`USER ${user}\r\nPASS ${PASSWORD}\r\n`);
      await c.line();
      const pass = await c.line();
      if (!pass.startsWith('+OK')) {
        figures.loginsRefused++;
        figures.violations.push(`cycle ${cycle}: ${user}'s first login after the restart answered ${pass}`);
      }
      c.write('QUIT\r\n');
      await c.line();
    } finally {
      c.close();
    }
  }
  const seen = new Map<string, { maildrop: number; trash: number }>();
  for (const user of users) {
    const scan = scanUser(join(dir, 'mail', user));
    for (const leftover of scan.leftovers) figures.violations.push(`cycle ${cycle}: ${user}/${leftover} left after recovery`);
    for (const [id, n] of scan.maildrop) seen.set(id, { maildrop: n, trash: 0 });
    for (const [id, n] of scan.trash) seen.set(id, { maildrop: seen.get(id)?.maildrop ?? 0, trash: n });
  }
  for (const [id, where] of seen) {
    if (!model.sent.has(id)) figures.violations.push(`cycle ${cycle}: unknown message ${id}`);
    if (where.maildrop + where.trash > 1) {
      figures.duplicated++;
      figures.violations.push(`cycle ${cycle}: ${id} found ${where.maildrop} times in the maildrop and ${where.trash} in Trash`);
    }
  }
  const trash = figures.mode === 'trash';
  for (const id of model.uncertain) {
    const where = seen.get(id) ?? { maildrop: 0, trash: 0 };
    if (where.maildrop === 0) {
      figures.cutDeletedApplied++;
      model.deleted.add(id);
    } else {
      figures.cutDeletedNotApplied++;
    }
    if (trash && where.maildrop + where.trash !== 1) figures.violations.push(`cycle ${cycle}: cut QUIT left ${id} in neither or both places`);
    if (!trash && where.trash !== 0) figures.violations.push(`cycle ${cycle}: expunge mode, ${id} in Trash`);
  }
  model.uncertain.clear();
  for (const id of model.acked) {
    const where = seen.get(id) ?? { maildrop: 0, trash: 0 };
    if (model.deleted.has(id)) {
      if (where.maildrop !== 0) figures.violations.push(`cycle ${cycle}: ${id} deleted by a QUIT +OK but still in the maildrop`);
      if (trash && where.trash !== 1) {
        figures.lost++;
        figures.violations.push(`cycle ${cycle}: ${id} deleted by a QUIT +OK, ${where.trash} copies in Trash`);
      }
      if (!trash && where.trash !== 0) figures.violations.push(`cycle ${cycle}: expunge mode, ${id} in Trash`);
    } else if (where.maildrop !== 1 || where.trash !== 0) {
      if (where.maildrop === 0) figures.lost++;
      figures.violations.push(`cycle ${cycle}: acknowledged ${id}: ${where.maildrop} in the maildrop, ${where.trash} in Trash`);
    }
  }
  for (const [id] of model.sent) {
    if (model.acked.has(id)) continue;
    // Not acknowledged: it may exist (once) or not; once seen it is as good as acknowledged.
    if (seen.has(id)) {
      figures.unacknowledgedSeen++;
      model.acked.add(id);
    } else {
      figures.unacknowledgedMissing++;
      // Never delivered: nothing can bring it back later.
    }
  }
  for (const [id] of model.sent) if (!model.acked.has(id)) model.sent.delete(id);
}

/** Run `kills` kill/restart cycles; returns the figures (violations empty when every invariant held). */
export async function runCrashCycles(options: CrashOptions): Promise<CrashFigures> {
  const started = Date.now();
  const userCount = options.users ?? 4;
  const users = Array.from({ length: userCount }, (_, i) => `u${i}`);
  const random = prng(options.seed);
  writeTree(options.dir, options.mode, userCount);
  const figures: CrashFigures = {
    mode: options.mode,
    seed: options.seed,
    kills: 0,
    deliveriesSent: 0,
    acknowledged: 0,
    unacknowledgedSeen: 0,
    unacknowledgedMissing: 0,
    quitOk: 0,
    deletedConfirmed: 0,
    quitCut: 0,
    cutDeletedApplied: 0,
    cutDeletedNotApplied: 0,
    loginsRefused: 0,
    lost: 0,
    duplicated: 0,
    violations: [],
    seconds: 0,
  };
  const model: Model = { sent: new Map(), acked: new Set(), deleted: new Set(), uncertain: new Set() };
  let serial = 0;
  const nextId = () => `crash-${options.seed}-${options.mode}-${++serial}@crash.test`;
  const minRun = options.minRunMs ?? 50;
  const maxRun = options.maxRunMs ?? 600;
  let current = await startServe(options.dir);
  try {
    for (let cycle = 0; cycle < options.kills; cycle++) {
      await check(options.dir, current.pop3, users, model, figures, cycle);
      let stopped = false;
      const errors: string[] = [];
      const workers: Promise<void>[] = [];
      for (let w = 0; w < (options.smtpWorkers ?? 4); w++) {
        const r = prng(options.seed * 1000 + cycle * 16 + w);
        workers.push(
          worker(
            () => smtpSession(current.smtp, model, figures, nextId, users[Math.floor(r() * users.length)] ?? 'u0', 1 + Math.floor(r() * 4)),
            () => stopped,
            errors,
          ),
        );
      }
      for (let w = 0; w < (options.pop3Workers ?? 3); w++) {
        const r = prng(options.seed * 1000 + cycle * 16 + 8 + w);
        workers.push(worker(() => pop3Session(current.pop3, model, figures, users[Math.floor(r() * users.length)] ?? 'u0', r), () => stopped, errors));
      }
      const delay = minRun + Math.floor(random() * (maxRun - minRun));
      await new Promise((resolve) => setTimeout(resolve, delay));
      stopped = true;
      current.serve.child.kill('SIGKILL');
      await current.serve.exited();
      figures.kills++;
      await Promise.all(workers);
      for (const e of errors) figures.violations.push(`cycle ${cycle}: client error before the kill: ${e}`);
      current = await startServe(options.dir);
      options.onCycle?.(cycle, figures);
    }
    await check(options.dir, current.pop3, users, model, figures, options.kills);
  } finally {
    await current.serve.stop('SIGKILL');
  }
  figures.seconds = Math.round((Date.now() - started) / 100) / 10;
  return figures;
}
