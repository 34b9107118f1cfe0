/**
 * /metrics moving with real traffic: a `maildird serve` child on a
 * temporary tree, real SMTP and POP3 sessions over sockets, and the
 * counters read back from its HTTP listener. Waits on replies and on the
 * counters themselves, never on time.
 */
import t from 'tap';
import { LineClient } from '../helpers/pop3-client.js';
import { ServeProcess, portOf } from '../helpers/cli-run.js';
import { fetchFrom, parseMetrics } from '../helpers/http-client.js';
import { ObservedStore } from '../../src/cli/observe.js';
import { ServerMetrics } from '../../src/http/server-metrics.js';
import { MemoryStore } from '../../src/storage/memory-store.js';

const MSG = 'From: bob@example.org\nTo: alice@example.org\nSubject: first\n\nHello.\n';
const NAME = '1700000000.M1P1.host';

async function scrape(port: number): Promise<Map<string, number>> {
  const reply = await fetchFrom(port, 'GET', '/metrics');
  if (reply.status !== 200) throw new Error(`/metrics answered ${reply.status}`);
  return parseMetrics(reply.body);
}

/** Scrape until `check` holds (the server counts a session's end just after the client sees it): bounded, no sleeps. */
async function scrapeUntil(port: number, check: (m: Map<string, number>) => boolean): Promise<Map<string, number>> {
  let metrics = await scrape(port);
  for (let i = 0; i < 200 && !check(metrics); i++) metrics = await scrape(port);
  return metrics;
}

/** Octets each way over a finished plaintext session, as the client saw them (the server must count the same). */
interface Traffic {
  in: number;
  out: number;
}

/** Wait for the server's close after QUIT, close our side, and add the session's octets to `traffic`. */
async function finish(client: LineClient, traffic: Traffic): Promise<void> {
  await client.closed();
  client.end();
  traffic.in += client.socket.bytesWritten;
  traffic.out += client.socket.bytesRead;
}

async function send(port: number, rcpts: readonly string[], body: string, traffic: Traffic, auth?: string): Promise<void> {
  const client = await LineClient.connect(port);
  await client.expect(/^220 /);
  client.send('EHLO client.example.net');
  while (!/^250 /.test(await client.line()));
  if (auth !== undefined) await client.command(`AUTH PLAIN ${auth}`, /^535 /);
  await client.command('MAIL FROM:<bob@example.net>', /^250 /);
  for (const rcpt of rcpts) await client.command(`RCPT TO:<${rcpt}>`, /^250 /);
  await client.command('DATA', /^354 /);
  await client.command(`${body}\r\n.`, /^250 /);
  await client.command('QUIT', /^221 /);
  await finish(client, traffic);
}

t.test('counters move with real SMTP and POP3 traffic, by the exact amounts', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({
      domains: ['example.org'],
      listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: '127.0.0.1:0' },
    }),
    passwd: 'alice:{PLAIN}wonder\nbob:{PLAIN}builder\n',
    mail: { alice: { cur: {}, new: { [NAME]: MSG }, tmp: {} } },
  });
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const port = (name: string) => portOf(lines.find((l) => l.name === name)?.address ?? ':0');
  const http = port('http');

  const before = await scrape(http);
  for (const proto of ['pop3', 'smtp']) {
    for (const family of ['connections_total', 'connections_closed_total', 'received_bytes_total', 'sent_bytes_total', 'auth_failures_total', 'logins_total']) {
      t.equal(before.get(`maildird_${family}{proto="${proto}"}`), 0, `${family} ${proto} shown at 0`);
    }
  }
  t.equal(before.get('maildird_messages_delivered_total{proto="smtp"}'), 0);
  t.equal(before.get('maildird_messages_retrieved_total'), 0);
  t.equal(before.get('maildird_delivery_duration_seconds_count{proto="smtp"}'), undefined, 'no delivery observed yet');
  const fsyncsBefore = before.get('maildird_store_fsyncs_total') ?? Number.NaN;

  // SMTP: one message to two users with a failed AUTH first, one to alice alone, and a session of refusals.
  const smtpTraffic: Traffic = { in: 0, out: 0 };
  const body = 'Subject: over smtp\r\n\r\nsecond message';
  await send(port('smtp'), ['alice@example.org', 'bob@example.org'], body, smtpTraffic, Buffer.from('\0alice\0wrong').toString('base64'));
  await send(port('smtp'), ['alice@example.org'], body, smtpTraffic);
  const refusals = await LineClient.connect(port('smtp'));
  await refusals.expect(/^220 /);
  await refusals.command('HELO client.example.net', /^250 /);
  await refusals.command('MAIL FROM:<bob@example.net>', /^250 /);
  await refusals.command('RCPT TO:<nobody@example.org>', /^550 /);
  await refusals.command('XYZZY plugh', /^500 /);
  await refusals.command('NOOP', /^250 /);
  await refusals.command('QUIT', /^221 /);
  await finish(refusals, smtpTraffic);

  const afterSmtp = await scrapeUntil(http, (m) => m.get('maildird_connections_closed_total{proto="smtp"}') === 3);
  t.equal(afterSmtp.get('maildird_connections_total{proto="smtp"}'), 3);
  t.equal(afterSmtp.get('maildird_connections_closed_total{proto="smtp"}'), 3);
  t.equal(afterSmtp.get('maildird_connections_open{proto="smtp"}'), 0);
  t.equal(afterSmtp.get('maildird_messages_delivered_total{proto="smtp"}'), 3, 'one copy per recipient');
  t.equal(afterSmtp.get('maildird_delivery_duration_seconds_count{proto="smtp"}'), 2, 'one latency per message');
  t.equal(afterSmtp.get('maildird_delivery_duration_seconds_bucket{proto="smtp",le="+Inf"}'), 2);
  t.equal(afterSmtp.get('maildird_received_bytes_total{proto="smtp"}'), smtpTraffic.in, 'every octet the clients sent');
  t.equal(afterSmtp.get('maildird_sent_bytes_total{proto="smtp"}'), smtpTraffic.out, 'every octet the clients got');
  t.equal(afterSmtp.get('maildird_auth_failures_total{proto="smtp"}'), 1);
  t.equal(afterSmtp.get('maildird_logins_total{proto="smtp"}'), 0);
  const smtpCommands: [string, string, number][] = [
    ['EHLO', 'ok', 2],
    ['HELO', 'ok', 1],
    ['AUTH', 'error', 1],
    ['MAIL', 'ok', 3],
    ['RCPT', 'ok', 3],
    ['RCPT', 'error', 1],
    ['DATA', 'ok', 2],
    ['NOOP', 'ok', 1],
    ['QUIT', 'ok', 3],
    ['unknown', 'error', 1],
  ];
  for (const [command, result, count] of smtpCommands) {
    t.equal(afterSmtp.get(`maildird_commands_total{proto="smtp",command="${command}",result="${result}"}`), count, `SMTP ${command} ${result}`);
  }
  const smtpSeries = [...afterSmtp].filter(([k]) => k.startsWith('maildird_commands_total{proto="smtp"'));
  t.equal(smtpSeries.reduce((sum, [, v]) => sum + v, 0), 18, 'no other SMTP command counted (DATA once, not for its 354)');
  t.ok((afterSmtp.get('maildird_store_fsyncs_total') ?? 0) >= fsyncsBefore + 2 * 2, 'fsyncs from the store: file and folder per delivery at least');

  // POP3: a wrong password, a login, a second session refused on the lock, RETR, DELE and QUIT.
  const popTraffic: Traffic = { in: 0, out: 0 };
  const wrong = await LineClient.connect(port('pop3'));
  await wrong.expect(/^\+OK /);
  await wrong.command('USER alice', /^\+OK/);
  await wrong.command('PASS nope', /^-ERR \[AUTH\]/);
  await wrong.command('QUIT', /^\+OK/);
  await finish(wrong, popTraffic);

  const client = await LineClient.connect(port('pop3'));
  await client.expect(/^\+OK /);
  await client.command('USER alice', /^\+OK/);
  await client.command('PASS wonder', /^\+OK/);
  const open = await scrapeUntil(http, (m) => m.get('maildird_connections_open{proto="pop3"}') === 1);
  t.equal(open.get('maildird_connections_open{proto="pop3"}'), 1, 'the open session is counted');

  const second = await LineClient.connect(port('pop3'));
  await second.expect(/^\+OK /);
  await second.command('USER alice', /^\+OK/);
  await second.command('PASS wonder', /^-ERR \[IN-USE\]/);
  await second.command('QUIT', /^\+OK/);
  await finish(second, popTraffic);

  await client.command('STAT', /^\+OK 3 /);
  await client.command('RETR 1', /^\+OK/);
  await client.lines();
  await client.command('RETR 2', /^\+OK/);
  await client.lines();
  await client.command('RETR 99', /^-ERR/);
  await client.command('XYZZY', /^-ERR/);
  await client.command('DELE 1', /^\+OK/);
  await client.command('QUIT', /^\+OK/);
  await finish(client, popTraffic);

  const after = await scrapeUntil(
    http,
    (m) => m.get('maildird_connections_closed_total{proto="pop3"}') === 3 && m.get('maildird_connections_open{proto="pop3"}') === 0,
  );
  t.equal(after.get('maildird_connections_total{proto="pop3"}'), 3);
  t.equal(after.get('maildird_connections_closed_total{proto="pop3"}'), 3);
  t.equal(after.get('maildird_connections_open{proto="pop3"}'), 0);
  t.equal(after.get('maildird_received_bytes_total{proto="pop3"}'), popTraffic.in, 'every octet the clients sent');
  t.equal(after.get('maildird_sent_bytes_total{proto="pop3"}'), popTraffic.out, 'every octet the clients got');
  t.equal(after.get('maildird_auth_failures_total{proto="pop3"}'), 1);
  t.equal(after.get('maildird_logins_total{proto="pop3"}'), 1);
  t.equal(after.get('maildird_lock_contention_total'), 1, 'the second session met the lock');
  t.equal(after.get('maildird_messages_retrieved_total'), 2);
  t.equal(after.get('maildird_messages_deleted_total'), 1);
  const popCommands: [string, string, number][] = [
    ['USER', 'ok', 3],
    ['PASS', 'ok', 1],
    ['PASS', 'error', 2],
    ['STAT', 'ok', 1],
    ['RETR', 'ok', 2],
    ['RETR', 'error', 1],
    ['DELE', 'ok', 1],
    ['QUIT', 'ok', 3],
    ['unknown', 'error', 1],
  ];
  for (const [command, result, count] of popCommands) {
    t.equal(after.get(`maildird_commands_total{proto="pop3",command="${command}",result="${result}"}`), count, `POP3 ${command} ${result}`);
  }
  const popSeries = [...after].filter(([k]) => k.startsWith('maildird_commands_total{proto="pop3"'));
  t.equal(popSeries.reduce((sum, [, v]) => sum + v, 0), 15, 'no other POP3 command counted');
  t.equal(after.get('maildird_messages_delivered_total{proto="smtp"}'), 3, 'unchanged by POP3');
  t.equal(after.get('maildird_commands_total{proto="smtp",command="QUIT",result="ok"}'), 3, 'unchanged by POP3');

  t.equal((await serve.stop()).code, 0);
});

t.test('ObservedStore: delivery latency counts from the last octet of content, not the client\'s pace', async (t) => {
  let clock = 1_000_000;
  const metrics = new ServerMetrics();
  const store = new ObservedStore(new MemoryStore(), metrics, 'smtp', () => clock);
  async function* slowClient(): AsyncGenerator<Buffer> {
    clock += 10_000;
    yield Buffer.from('Subject: slow\r\n\r\n');
    clock += 10_000;
    yield Buffer.from('one line a minute\r\n');
    clock += 10_000;
  }
  const outcomes = await store.deliver({ recipients: [{ name: 'alice' }, { name: 'bob' }], content: slowClient() });
  t.same(outcomes.map((o) => o.ok), [true, true]);
  const text = parseMetrics(metrics.render());
  t.equal(text.get('maildird_delivery_duration_seconds_count{proto="smtp"}'), 1, 'one observation per message');
  t.equal(text.get('maildird_delivery_duration_seconds_sum{proto="smtp"}'), 0, 'the 30 s the client took are not the store\'s');
  t.equal(text.get('maildird_messages_delivered_total{proto="smtp"}'), 2);

  clock += 5;
  await store.deliver({ recipients: [{ name: 'alice' }], content: Buffer.from('Subject: whole\r\n\r\nx\r\n') });
  t.equal(parseMetrics(metrics.render()).get('maildird_delivery_duration_seconds_count{proto="smtp"}'), 2);
});
