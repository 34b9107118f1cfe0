/**
 * Load against one `maildird serve` child (issue 6), in phases:
 *
 * 1. hold: `connections` connections opened and held idle (half POP3, half
 *    SMTP, from `sources` loopback addresses 127.0.1.x so the per-IP limit
 *    is not what is measured); /metrics before and after gives the memory
 *    per idle connection (resident set and V8 heap, from
 *    src/http/process-metrics.ts);
 * 2. work: every held connection then runs a whole session at once (POP3:
 *    USER/PASS, STAT, RETR of every message, QUIT; SMTP: EHLO, MAIL, RCPT,
 *    DATA, QUIT); all must end with +OK / 250 / 221. The event-loop lag of
 *    the server over this phase is read from /metrics
 *    (`nodejs_eventloop_lag_seconds`, monitorEventLoopDelay in the server,
 *    reset at each scrape, so the scrape before the phase starts the window);
 * 3. slowloris: `slowloris` clients per protocol send one byte of a command
 *    line every `slowByteMs` while normal sessions run; the line deadline
 *    (`limits.lineSeconds`) must cut every slow client off (a reply, then
 *    the close) and every normal session must complete;
 * 4. flood: `flood` connections per protocol from 127.0.0.2 at once; exactly
 *    `perIpLimit` per protocol get a greeting, the rest the per-IP refusal,
 *    while sessions from other addresses (127.0.4.x) complete.
 *
 * The server's open-files limit is raised to the hard limit by the shell
 * that execs it (`ulimit -n`). Results are counts and replies; the
 * figures (memory, lag, seconds) are reported, never asserted.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { ServeProcess, portOf } from './cli-run.js';
import { WireClient, prng } from './crash-harness.js';

export interface LoadOptions {
  readonly dir: string;
  readonly seed: number;
  /** Held at once, half POP3 and half SMTP. */
  readonly connections: number;
  /** Loopback source addresses for the held connections (127.0.1.1 ...). */
  readonly sources: number;
  readonly perIpLimit: number;
  readonly messagesPerUser: number;
  readonly slowloris: number;
  readonly slowByteMs: number;
  readonly lineSeconds: number;
  /** Normal sessions per protocol run beside the slow clients and beside the flood. */
  readonly bystanders: number;
  readonly flood: number;
  readonly log?: (line: string) => void;
}

export interface LoadFigures {
  connections: number;
  heldOpen: { pop3: number; smtp: number };
  rssBaseBytes: number;
  rssHeldBytes: number;
  heapBaseBytes: number;
  heapHeldBytes: number;
  rssPerIdleConnectionBytes: number;
  heapPerIdleConnectionBytes: number;
  rssPerIdlePop3Bytes: number;
  rssPerIdleSmtpBytes: number;
  sessionsOk: { pop3: number; smtp: number };
  sessionErrors: string[];
  messagesRetrieved: number;
  bytesRetrieved: number;
  messagesDelivered: number;
  workSeconds: number;
  lagSeconds: { p50: number; p90: number; p99: number; max: number };
  slowCutOff: { pop3: number; smtp: number };
  slowNotCut: number;
  slowBytesBeforeCut: { min: number; max: number };
  slowReplies: string[];
  bystandersOk: number;
  bystanderErrors: string[];
  floodAccepted: { pop3: number; smtp: number };
  floodRefused: { pop3: number; smtp: number };
  floodOther: string[];
  floodBystandersOk: number;
  seconds: number;
}

const PASSWORD = 'load-pw';

function writeTree(o: LoadOptions): void {
  const pop3Users = Math.ceil(o.connections / 2);
  const lines: string[] = [];
  const body = `From: a@example.org\nSubject: load\n\n${'0123456789abcdefghijklmnopqrstuvwxyz\n'.repeat(40)}`;
  for (let u = 0; u < pop3Users; u++) {
    const dir = join(o.dir, 'mail', `p${u}`);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
    for (let m = 0; m < o.messagesPerUser; m++) writeFileSync(join(dir, 'cur', `${1700000000 + m}.M${m}P1Q${m}.load:2,S`), body);
    lines.push(`p${u}:{PLAIN}${PASSWORD}\n`);
  }
  for (let u = 0; u < 10; u++) lines.push(`r${u}:{PLAIN}${PASSWORD}\n`);
  // Bystanders and flood-time sessions log in as these (never two at once on one).
  for (let u = 0; u < 4 * o.bystanders; u++) {
    const dir = join(o.dir, 'mail', `b${u}`);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'cur', `1700000000.M1P1Q1.load:2,S`), body);
    lines.push(`b${u}:{PLAIN}${PASSWORD}\n`);
  }
  writeFileSync(join(o.dir, 'passwd'), lines.join(''));
  writeFileSync(
    join(o.dir, 'maildird.json'),
    JSON.stringify({
      listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: '127.0.0.1:0' },
      hostname: 'load.test',
      logLevel: 'warn',
      limits: {
        maxConnections: o.connections + 2 * o.flood + 1000,
        maxConnectionsPerIp: o.perIpLimit,
        lineSeconds: o.lineSeconds,
        shutdownGraceSeconds: 1,
      },
    }),
  );
}

/** GET /metrics and return each sample line as `name{labels}` -> value. */
function scrape(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const out = new Map<string, number>();
        for (const line of text.split('\n')) {
          const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
          if (m !== null) out.set(m[1] ?? '', Number(m[2]));
        }
        resolve(out);
      });
    }).on('error', reject);
  });
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run));
}

interface Held {
  proto: 'pop3' | 'smtp';
  client: WireClient;
  index: number;
}

async function pop3Work(c: WireClient, user: string): Promise<{ messages: number; bytes: number }> {
  c.write(`USER ${user}\r\n`);
  if (!(await c.line()).startsWith('+OK')) throw new Error('USER refused');
  c.write(`PASS ${PASSWORD}\r\n`);
  const pass = await c.line();
  if (!pass.startsWith('+OK')) throw new Error(`PASS: ${pass}`);
  c.write('STAT\r\n');
  const n = Number(/^\+OK (\d+)/.exec(await c.line())?.[1] ?? -1);
  let bytes = 0;
  for (let i = 1; i <= n; i++) {
    c.write(`RETR ${i}\r\n`);
    if (!(await c.line()).startsWith('+OK')) throw new Error('RETR refused');
    for (const l of await c.pop3Body()) bytes += l.length + 2;
  }
  c.write('QUIT\r\n');
  const quit = await c.line();
  if (!quit.startsWith('+OK')) throw new Error(`QUIT: ${quit}`);
  return { messages: n, bytes };
}

async function smtpWork(c: WireClient, rcpt: string, tag: string): Promise<void> {
  c.write('EHLO load.client\r\n');
  if (!(await c.smtpReply()).startsWith('250')) throw new Error('EHLO refused');
  c.write(`MAIL FROM:<s@remote.example>\r\nRCPT TO:<${rcpt}@localhost>\r\nDATA\r\n`);
  const replies = [await c.smtpReply(), await c.smtpReply(), await c.smtpReply()];
  if (!replies[2]?.startsWith('354')) throw new Error(`envelope: ${replies.join(' | ')}`);
  c.write(`Subject: load ${tag}\r\nMessage-ID: <${tag}@load.test>\r\n\r\n${'a line of the message body\r\n'.repeat(20)}.\r\n`);
  const done = await c.smtpReply();
  if (!done.startsWith('250')) throw new Error(`DATA: ${done}`);
  c.write('QUIT\r\n');
  if (!(await c.smtpReply()).startsWith('221')) throw new Error('QUIT');
}

/** A whole session from a fresh connection (bystanders). */
async function session(proto: 'pop3' | 'smtp', port: number, user: string, localAddress: string, tag: string): Promise<void> {
  const c = await WireClient.open(port, localAddress);
  try {
    const greeting = proto === 'pop3' ? await c.line() : await c.smtpReply();
    if (!/^(\+OK|220)/.test(greeting)) throw new Error(`greeting: ${greeting}`);
    if (proto === 'pop3') await pop3Work(c, user);
    else await smtpWork(c, user, tag);
  } finally {
    c.close();
  }
}

/** Send `line` one byte every `everyMs` until the server closes; returns the bytes sent and what the server said. */
async function slowClient(port: number, proto: 'pop3' | 'smtp', line: string, everyMs: number, localAddress: string): Promise<{ cut: boolean; bytes: number; reply: string }> {
  const c = await WireClient.open(port, localAddress);
  try {
    if (proto === 'pop3') await c.line();
    else await c.smtpReply();
    let sent = 0;
    const reply = c.line().catch(() => '');
    for (; sent < line.length && !c.isClosed; sent++) {
      c.write(line[sent] ?? '');
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    const said = c.isClosed ? await reply : '';
    return { cut: c.isClosed, bytes: sent, reply: said };
  } finally {
    c.close();
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadFigures> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const random = prng(o.seed);
  writeTree(o);
  const serve = ServeProcess.start([], { cwd: o.dir, prelude: 'ulimit -n "$(ulimit -Hn)"; ' });
  const figures: LoadFigures = {
    connections: o.connections,
    heldOpen: { pop3: 0, smtp: 0 },
    rssBaseBytes: 0,
    rssHeldBytes: 0,
    heapBaseBytes: 0,
    heapHeldBytes: 0,
    rssPerIdleConnectionBytes: 0,
    heapPerIdleConnectionBytes: 0,
    rssPerIdlePop3Bytes: 0,
    rssPerIdleSmtpBytes: 0,
    sessionsOk: { pop3: 0, smtp: 0 },
    sessionErrors: [],
    messagesRetrieved: 0,
    bytesRetrieved: 0,
    messagesDelivered: 0,
    workSeconds: 0,
    lagSeconds: { p50: 0, p90: 0, p99: 0, max: 0 },
    slowCutOff: { pop3: 0, smtp: 0 },
    slowNotCut: 0,
    slowBytesBeforeCut: { min: Number.POSITIVE_INFINITY, max: 0 },
    slowReplies: [],
    bystandersOk: 0,
    bystanderErrors: [],
    floodAccepted: { pop3: 0, smtp: 0 },
    floodRefused: { pop3: 0, smtp: 0 },
    floodOther: [],
    floodBystandersOk: 0,
    seconds: 0,
  };
  const held: Held[] = [];
  try {
    const lines = await serve.ready();
    const port = (name: string) => portOf(lines.find((l) => l.name === name)?.address ?? ':0');
    const pop3 = port('pop3');
    const smtp = port('smtp');
    const http = port('http');
    const base = await scrape(http);
    figures.rssBaseBytes = base.get('process_resident_memory_bytes') ?? 0;
    figures.heapBaseBytes = base.get('nodejs_heap_used_bytes') ?? 0;

    // 1. hold
    const half = Math.ceil(o.connections / 2);
    const source = (i: number) => `127.0.1.${1 + (i % o.sources)}`;
    const open = async (proto: 'pop3' | 'smtp', index: number) => {
      const client = await WireClient.open(proto === 'pop3' ? pop3 : smtp, source(index));
      const greeting = proto === 'pop3' ? await client.line() : await client.smtpReply();
      if (!/^(\+OK|220)/.test(greeting)) throw new Error(`${proto} greeting: ${greeting}`);
      held.push({ proto, client, index });
    };
    await inBatches([...Array(half).keys()], 200, (i) => open('pop3', i));
    const afterPop3 = await scrape(http);
    await inBatches([...Array(o.connections - half).keys()], 200, (i) => open('smtp', i));
    const afterAll = await scrape(http);
    figures.heldOpen = {
      pop3: afterAll.get('maildird_connections_open{proto="pop3"}') ?? 0,
      smtp: afterAll.get('maildird_connections_open{proto="smtp"}') ?? 0,
    };
    figures.rssHeldBytes = afterAll.get('process_resident_memory_bytes') ?? 0;
    figures.heapHeldBytes = afterAll.get('nodejs_heap_used_bytes') ?? 0;
    const rssPop3 = afterPop3.get('process_resident_memory_bytes') ?? 0;
    figures.rssPerIdleConnectionBytes = Math.round((figures.rssHeldBytes - figures.rssBaseBytes) / o.connections);
    figures.heapPerIdleConnectionBytes = Math.round((figures.heapHeldBytes - figures.heapBaseBytes) / o.connections);
    figures.rssPerIdlePop3Bytes = Math.round((rssPop3 - figures.rssBaseBytes) / half);
    figures.rssPerIdleSmtpBytes = Math.round((figures.rssHeldBytes - rssPop3) / (o.connections - half));
    log(`held ${held.length} connections (server counts pop3 ${figures.heldOpen.pop3}, smtp ${figures.heldOpen.smtp}); ` +
      `rss ${(figures.rssBaseBytes / 2 ** 20).toFixed(1)} -> ${(figures.rssHeldBytes / 2 ** 20).toFixed(1)} MiB`);

    // 2. work
    await scrape(http); // starts the lag window
    const workStart = Date.now();
    await Promise.all(
      held.map(async (h) => {
        try {
          if (h.proto === 'pop3') {
            const got = await pop3Work(h.client, `p${h.index}`);
            figures.messagesRetrieved += got.messages;
            figures.bytesRetrieved += got.bytes;
            figures.sessionsOk.pop3++;
          } else {
            await smtpWork(h.client, `r${Math.floor(random() * 10)}`, `held-${h.index}`);
            figures.messagesDelivered++;
            figures.sessionsOk.smtp++;
          }
        } catch (err) {
          figures.sessionErrors.push(`${h.proto} ${h.index}: ${(err as Error).message}`);
        } finally {
          h.client.close();
        }
      }),
    );
    figures.workSeconds = (Date.now() - workStart) / 1000;
    const lag = await scrape(http);
    const q = (k: string) => lag.get(`nodejs_eventloop_lag_seconds{quantile="${k}"}`) ?? 0;
    figures.lagSeconds = { p50: q('0.5'), p90: q('0.9'), p99: q('0.99'), max: q('max') };
    log(`work: ${figures.sessionsOk.pop3} POP3 + ${figures.sessionsOk.smtp} SMTP sessions ok, ${figures.sessionErrors.length} errors, ` +
      `${figures.workSeconds.toFixed(1)} s; lag p99 ${(figures.lagSeconds.p99 * 1000).toFixed(0)} ms, max ${(figures.lagSeconds.max * 1000).toFixed(0)} ms`);

    // 3. slowloris beside normal sessions
    const slow: Promise<void>[] = [];
    for (let i = 0; i < o.slowloris; i++) {
      for (const proto of ['pop3', 'smtp'] as const) {
        const text = proto === 'pop3' ? `USER slowpoke-${'x'.repeat(100)}\r\n` : `EHLO slowpoke-${'x'.repeat(100)}\r\n`;
        slow.push(
          slowClient(proto === 'pop3' ? pop3 : smtp, proto, text, o.slowByteMs, `127.0.2.${1 + (i % 200)}`).then((r) => {
            if (r.cut) {
              figures.slowCutOff[proto]++;
              figures.slowBytesBeforeCut.min = Math.min(figures.slowBytesBeforeCut.min, r.bytes);
              figures.slowBytesBeforeCut.max = Math.max(figures.slowBytesBeforeCut.max, r.bytes);
              if (!figures.slowReplies.includes(r.reply)) figures.slowReplies.push(r.reply);
            } else figures.slowNotCut++;
          }),
        );
      }
    }
    const bystanders: Promise<void>[] = [];
    for (let i = 0; i < o.bystanders; i++) {
      for (const proto of ['pop3', 'smtp'] as const) {
        bystanders.push(
          session(proto, proto === 'pop3' ? pop3 : smtp, proto === 'pop3' ? `b${i}` : `r${i % 10}`, `127.0.3.${1 + (i % 200)}`, `by-${i}`).then(
            () => void figures.bystandersOk++,
            (err: Error) => void figures.bystanderErrors.push(`${proto} ${i}: ${err.message}`),
          ),
        );
      }
    }
    await Promise.all([...slow, ...bystanders]);
    if (figures.slowBytesBeforeCut.min === Number.POSITIVE_INFINITY) figures.slowBytesBeforeCut.min = 0;
    log(`slowloris: ${figures.slowCutOff.pop3} POP3 + ${figures.slowCutOff.smtp} SMTP slow clients cut off, ${figures.slowNotCut} not; ${figures.bystandersOk} bystander sessions ok`);

    // 4. flood from one address beside sessions from another
    const flooders: WireClient[] = [];
    const floods: Promise<void>[] = [];
    for (const proto of ['pop3', 'smtp'] as const) {
      for (let i = 0; i < o.flood; i++) {
        floods.push(
          (async () => {
            const c = await WireClient.open(proto === 'pop3' ? pop3 : smtp, '127.0.0.2');
            flooders.push(c);
            const first = proto === 'pop3' ? await c.line().catch(() => '') : await c.smtpReply().catch(() => '');
            if (proto === 'pop3' ? first.startsWith('+OK') : first.startsWith('220')) figures.floodAccepted[proto]++;
            else if (/too many connections from your address/i.test(first)) figures.floodRefused[proto]++;
            else if (!figures.floodOther.includes(first)) figures.floodOther.push(first);
          })(),
        );
      }
    }
    await Promise.all(floods);
    const others: Promise<void>[] = [];
    for (let i = 0; i < o.bystanders; i++) {
      for (const proto of ['pop3', 'smtp'] as const) {
        others.push(
          session(proto, proto === 'pop3' ? pop3 : smtp, proto === 'pop3' ? `b${o.bystanders + i}` : `r${i % 10}`, `127.0.4.${1 + (i % 200)}`, `flood-by-${i}`).then(
            () => void figures.floodBystandersOk++,
            (err: Error) => void figures.bystanderErrors.push(`during the flood, ${proto} ${i}: ${err.message}`),
          ),
        );
      }
    }
    await Promise.all(others);
    for (const c of flooders) c.close();
    log(`flood from 127.0.0.2: accepted pop3 ${figures.floodAccepted.pop3}, smtp ${figures.floodAccepted.smtp}; refused pop3 ${figures.floodRefused.pop3}, smtp ${figures.floodRefused.smtp}; ${figures.floodBystandersOk} sessions from other addresses ok`);
  } finally {
    for (const h of held) h.client.close();
    await serve.stop('SIGKILL');
  }
  figures.seconds = Math.round((Date.now() - started) / 100) / 10;
  return figures;
}
