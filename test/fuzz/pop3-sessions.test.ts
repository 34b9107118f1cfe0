/**
 * POP3 session fuzzing (issue 6; DESIGN invariants 2, 3 and 5): many
 * seeded sessions run concurrently over real sockets against one in-process
 * server on a real temporary Maildir: valid commands with mutated
 * arguments, binary garbage, NUL bytes, overlong lines, odd line ends, split
 * and coalesced writes, random disconnects. Afterwards the server still
 * serves a well-formed session with STAT/LIST sizes equal to RETR bytes, and
 * every maildrop changed only as valid sessions change it: each message is
 * in the maildrop or Trash exactly once (trash mode) or gone only when a
 * QUIT's UPDATE reported it (expunge mode), no tmp file, journal or lock
 * left behind, and a user whose sessions never QUIT is byte-for-byte
 * unchanged.
 */
import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import { createPop3Server } from '../../src/pop3/server.ts';
import type { DeleteEvent } from '../../src/pop3/events.ts';
import type { MailUser } from '../../src/storage/store.ts';
import { LineClient } from '../helpers/pop3-client.ts';
import { announceSeed, fuzzSeed, prng } from './support/seed.ts';
import { fuzzWorkDir } from './support/workdir.ts';
import { pick, planWrites, runPool, runSession } from './support/session-runner.ts';
import { hashCounts, userCensus, type UserCensus } from './support/census.ts';

const SESSIONS_PER_MODE = Number(process.env['FUZZ_POP3_SESSIONS'] ?? 500);
const CONCURRENCY = 24;
const SESSION_BOUND_MS = 60_000;

const USERS = [
  { name: 'alice', password: '{PLAIN}secret' },
  { name: 'bob', password: '{PLAIN}hunter2' },
  { name: 'jürgen', password: '{PLAIN}pässword' },
  { name: 'carol@example.org', password: '{PLAIN}carol-pw' },
  ...Array.from({ length: 10 }, (_, i) => ({ name: `user${i}`, password: `{PLAIN}pw${i}` })),
  // dave's sessions never send QUIT: his tree must come out byte-for-byte unchanged.
  { name: 'dave', password: '{PLAIN}dave-pw' },
];
const PASSWORDS = new Map(USERS.map((u) => [u.name, u.password.slice('{PLAIN}'.length)]));
const LOGIN_NAMES = ['alice', 'bob', 'jürgen', 'carol@example.org', 'carol', 'dave', 'ALICE', 'alice@example.org'];
const HOSTILE_NAMES = [
  '../../etc', '../alice', 'alice/../bob', '/etc/passwd', '..', '.', 'alice\0', '%2e%2e/etc', '....//', 'a'.repeat(300),
  '', 'bob bob', '\\..\\..\\etc', 'alice/', '.Trash', 'alice@../../etc', '../../etc@example.org', '\u202e', '\xff\xfe',
];
const NUMBERS = ['1', '2', '3', '5', '9', '0', '-1', '4294967297', '99999999999999999999', '1 2', '01', '+1', ' 1', '1.0', '', 'x', '\u0661', '1\t'];

/** Messages: small ones, one with dot lines, one without a final line end, one larger than the small-message buffer. */
function mailFor(user: string): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 1; i <= 6; i++) out.push(Buffer.from(`Subject: ${user} ${i}\n\nbody ${i} of ${user}\n`));
  out.push(Buffer.from(`Subject: ${user} dots\n\n.\n..\n.hidden\nend\r\n`));
  out.push(Buffer.from(`Subject: ${user} no final newline\n\nlast line`));
  if (user === 'alice') out.push(Buffer.from(`Subject: big\n\n${'x'.repeat(99)}\n`.repeat(1500)));
  return out;
}

function mutateLine(line: string, rand: () => number): Buffer {
  let text = line;
  const r = rand();
  if (r < 0.08) text = text.toLowerCase();
  else if (r < 0.14) text = `${text}${' '.repeat(1 + Math.floor(rand() * 3))}`;
  else if (r < 0.2) {
    const at = Math.floor(rand() * (text.length + 1));
    text = `${text.slice(0, at)}\0${text.slice(at)}`;
  } else if (r < 0.25) text = `${text} ${'A'.repeat(200 + Math.floor(rand() * 4000))}`;
  let bytes = Buffer.from(text, rand() < 0.9 ? 'utf8' : 'latin1');
  if (rand() < 0.05) bytes = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 80) }, () => Math.floor(rand() * 256)));
  const end = rand();
  const eol = end < 0.85 ? '\r\n' : end < 0.95 ? '\n' : end < 0.98 ? '\r' : '';
  return Buffer.concat([bytes, Buffer.from(eol)]);
}

function randomCommand(rand: () => number, user: string): string {
  const n = (): string => pick(rand, NUMBERS);
  switch (Math.floor(rand() * 17)) {
    case 0:
      return `USER ${rand() < 0.5 ? pick(rand, LOGIN_NAMES) : pick(rand, HOSTILE_NAMES)}`;
    case 1:
      return `PASS ${rand() < 0.5 ? (PASSWORDS.get(user) ?? 'x') : pick(rand, ['', 'wrong', 'secret', '\0', 'a'.repeat(400)])}`;
    case 2: {
      const login = rand() < 0.5 ? user : pick(rand, HOSTILE_NAMES);
      const payload = Buffer.from(`${rand() < 0.2 ? login : ''}\0${login}\0${PASSWORDS.get(user) ?? 'x'}`).toString('base64');
      return `AUTH PLAIN ${rand() < 0.8 ? payload : `${payload.slice(1)}=`}`;
    }
    case 3:
      return pick(rand, ['AUTH LOGIN', 'AUTH CRAM-MD5', 'AUTH', 'AUTH XYZ', 'AUTH PLAIN', '*', 'AUTH PLAIN =', 'APOP alice 0123456789abcdef0123456789abcdef']);
    case 4:
      return 'STAT';
    case 5:
      return rand() < 0.5 ? 'LIST' : `LIST ${n()}`;
    case 6:
      return rand() < 0.5 ? 'UIDL' : `UIDL ${n()}`;
    case 7:
    case 8:
      return `RETR ${n()}`;
    case 9:
      return `TOP ${n()} ${n()}`;
    case 10:
    case 11:
      return `DELE ${n()}`;
    case 12:
      return 'RSET';
    case 13:
      return pick(rand, ['NOOP', 'CAPA', 'UTF8', 'STLS', 'LANG', 'XTND XLST', 'EXPIRE']);
    case 14:
      return pick(rand, ['', ' ', 'QUI', 'QUITX', 'RETR', 'DELE', 'LIST 1 2', 'TOP 1']);
    case 15:
      return pick(rand, HOSTILE_NAMES);
    default:
      return `NOOP ${pick(rand, HOSTILE_NAMES)}`;
  }
}

/** One session's bytes: maybe a valid login first, random commands, QUIT for anyone but dave. */
function sessionBytes(rand: () => number): { bytes: Buffer; user: string } {
  const user = pick(rand, USERS).name;
  const parts: Buffer[] = [];
  if (rand() < 0.75) {
    const login = user === 'carol@example.org' && rand() < 0.5 ? 'carol' : user;
    if (rand() < 0.7) parts.push(Buffer.from(`USER ${login}\r\nPASS ${PASSWORDS.get(user)}\r\n`));
    else parts.push(Buffer.from(`AUTH PLAIN ${Buffer.from(`\0${login}\0${PASSWORDS.get(user)}`).toString('base64')}\r\n`));
  }
  const count = 1 + Math.floor(rand() * 25);
  // A third of the sessions are clean: valid commands only, so UPDATE runs often.
  const isClean = rand() < 0.33;
  for (let i = 0; i < count; i++) {
    if (isClean) {
      const m = 1 + Math.floor(rand() * 9);
      parts.push(Buffer.from(`${pick(rand, ['RETR', 'DELE', 'DELE', 'LIST', 'UIDL', 'TOP', 'STAT', 'NOOP', 'RSET'])} ${m}${rand() < 0.2 ? ' 2' : ''}\r\n`));
    } else {
      parts.push(mutateLine(randomCommand(rand, user), rand));
    }
  }
  if (user !== 'dave' && rand() < 0.7) {
    parts.push(Buffer.from('QUIT\r\n'));
    if (rand() < 0.2) parts.push(Buffer.from('STAT\r\nDELE 1\r\n'));
  }
  return { bytes: Buffer.concat(parts), user };
}

async function census(root: string): Promise<Map<string, UserCensus>> {
  const out = new Map<string, UserCensus>();
  for (const { name } of USERS) out.set(name, await userCensus(join(root, name)));
  return out;
}

async function fuzzMode(t: Test, mode: 'trash' | 'expunge', seed: number): Promise<{ sessions: number; sent: number; received: number }> {
  const root = fuzzWorkDir(t);
  const store = await MaildirStore.open({ root, hostname: 'fuzz.test', deletionMode: mode, cache: { isPersistent: false } });
  const users = UserDatabase.fromEntries(USERS, { localDomains: ['example.org'], dummyHash: '{PLAIN}not-a-password' });
  for (const { name } of USERS) {
    const recipient = users.lookup(name) as MailUser;
    for (const content of mailFor(name)) {
      const [outcome] = await store.deliver({ recipients: [recipient], content });
      if (outcome === undefined || !outcome.ok) throw new Error(`setup delivery to ${name} failed`);
    }
  }
  const before = await census(root);
  const server = createPop3Server({
    store,
    users,
    hostname: 'pop.fuzz.test',
    throttle: new LoginThrottle({ baseDelayMs: 0 }),
    limits: { maxConnectionsPerIp: 0, maxConnections: 0, lingerMs: 100 },
  });
  const deletes: DeleteEvent[] = [];
  server.on('delete', (e) => deletes.push(e));
  let ended = 0;
  server.on('session-end', () => ended++);
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(async () => {
    await server.close();
    await store.close();
  });

  const rand = prng(seed);
  const plans = Array.from({ length: SESSIONS_PER_MODE }, () => planWrites(sessionBytes(rand).bytes, rand));
  const results = await runPool(plans.length, CONCURRENCY, (i) => runSession(port, plans[i]!, SESSION_BOUND_MS));
  const sent = results.reduce((s, r) => s + r.sent, 0);
  const received = results.reduce((s, r) => s + r.received, 0);
  const hung = results.filter((r) => r.isHung).length;
  const loggedIn = results.filter((r) => r.output.includes('+OK Logged in')).length;
  const inUse = results.filter((r) => r.output.includes('[IN-USE]')).length;
  const quitOk = results.filter((r) => r.output.includes('signing off')).length;
  // Deletions the clients were told about: `+OK ... (N messages deleted)`.
  const toldDeleted = results.reduce((s, r) => s + Number(/signing off \((\d+) messages? deleted\)/.exec(r.output)?.[1] ?? 0), 0);
  t.comment(`${mode}: ${loggedIn} sessions logged in, ${inUse} refused IN-USE, ${quitOk} QUIT +OK`);
  t.equal(hung, 0, 'every session ended by itself (server closed or answered our FIN)');
  // Nothing the server wrote may be a stack trace or internals.
  t.notOk(results.some((r) => /\n\s+at |TypeError|ReferenceError|ENOENT|EACCES|\/tmp\//.test(r.output)), 'no internals in any reply');
  // Wait (bounded) until the server has finished tearing every session down.
  for (let i = 0; i < 2000 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(server.connectionCount, 0, 'no session left open');
  t.ok(ended >= results.length - hung, `a session-end for each session (${ended})`);

  // A well-formed session still works, and its sizes are what RETR sends (invariant 5).
  const client = await LineClient.connect(port);
  await client.expect(/^\+OK /);
  await client.command('USER bob', /^\+OK/);
  await client.command('PASS hunter2', /^\+OK Logged in/);
  const stat = /^\+OK (\d+) (\d+)$/.exec(await client.command('STAT', /^\+OK \d+ \d+$/));
  const count = Number(stat?.[1]);
  let octets = 0;
  for (let i = 1; i <= count; i++) {
    await client.command(`RETR ${i}`, /^\+OK/);
    octets += (await client.body()).length;
  }
  t.equal(octets, Number(stat?.[2]), 'STAT octets equal the bytes RETR sent');
  await client.command('QUIT', /^\+OK/);
  await client.closed();

  const after = await census(root);
  const deletedUidls = new Map<string, string[]>();
  for (const e of deletes) deletedUidls.set(e.user, [...(deletedUidls.get(e.user) ?? []), ...e.messages.map((m) => m.uidl)]);
  for (const { name } of USERS) {
    const b = before.get(name)!;
    const a = after.get(name)!;
    t.same(a.leftovers, [], `${name}: no tmp file, journal or lock left`);
    const bases = a.messages.map((m) => m.base);
    t.equal(new Set(bases).size, bases.length, `${name}: no message twice (maildrop + Trash)`);
    const deleted = new Set(deletedUidls.get(name) ?? []);
    t.equal(deleted.size, (deletedUidls.get(name) ?? []).length, `${name}: no message deleted twice`);
    const beforeHashes = hashCounts(b.messages);
    const afterHashes = hashCounts(a.messages);
    const inDrop = a.messages.filter((m) => m.where === 'maildrop');
    const inTrash = a.messages.filter((m) => m.where === 'trash');
    if (mode === 'trash') {
      t.same(afterHashes, beforeHashes, `${name}: every message still there exactly once, same bytes`);
      t.same(inTrash.map((m) => m.base).sort(), [...deleted].sort(), `${name}: Trash holds exactly what QUITs reported deleted`);
    } else {
      t.equal(inTrash.length, 0, `${name}: expunge mode moves nothing to Trash`);
      const expected = b.messages.filter((m) => !deleted.has(m.base));
      t.same(hashCounts(inDrop), hashCounts(expected), `${name}: exactly the messages QUITs reported deleted are gone`);
    }
    // A message whose base is not in the deleted set stays in the maildrop under its base.
    for (const m of b.messages) {
      if (deleted.has(m.base)) continue;
      if (!inDrop.some((x) => x.base === m.base)) t.fail(`${name}: ${m.base} left the maildrop without a QUIT`);
    }
    if (name === 'dave') t.same(a.messages, b.messages, 'dave (no QUIT ever): tree byte-for-byte unchanged');
  }
  const deletedTotal = [...deletedUidls.values()].reduce((s, l) => s + l.length, 0);
  // Every removal was announced by a QUIT +OK; a client may miss its +OK only by disconnecting first.
  t.ok(toldDeleted <= deletedTotal, `clients were told of ${toldDeleted} removals, the store made ${deletedTotal}`);
  t.comment(`${mode}: ${results.length} sessions, ${sent} bytes sent, ${received} bytes received, ${deletedTotal} messages removed by QUIT`);
  return { sessions: results.length, sent, received };
}

const seed = fuzzSeed();

t.test('POP3 fuzz, trash mode', async (t) => {
  announceSeed(t, seed, 'pop3 trash');
  await fuzzMode(t, 'trash', seed);
});

t.test('POP3 fuzz, expunge mode', async (t) => {
  announceSeed(t, seed + 1, 'pop3 expunge');
  await fuzzMode(t, 'expunge', seed + 1);
});
