/**
 * The Trash sweeper over a real MaildirStore: messages moved to Trash by
 * real POP3-style commits, the clock injected (a message's age is its
 * ctime against "now", so "now" moves, not the files), timers fired by
 * hand. Then `maildird serve` with trashRetentionDays purges at start.
 */
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { silentLogger } from '../../src/log/logger.js';
import { TRASH_SWEEP_INTERVAL_MS, TrashSweeper } from '../../src/cli/trash-sweeper.js';
import { MemoryStore } from '../../src/storage/memory-store.js';
import type { MailStore, MailUser } from '../../src/storage/store.js';
import { ManualTimers } from '../helpers/smtp-timers.js';
import { ServeProcess, portOf } from '../helpers/cli-run.js';
import { fetchFrom, parseMetrics } from '../helpers/http-client.js';

const DAY = 86_400_000;
const alice: MailUser = { name: 'alice' };
const bob: MailUser = { name: 'bob' };

async function trashOne(store: MailStore, user: MailUser, subject: string): Promise<void> {
  const [outcome] = await store.deliver({ recipients: [user], content: Buffer.from(`Subject: ${subject}\n\nbody\n`) });
  if (outcome?.ok !== true) throw new Error('delivery failed');
  const drop = await store.openMaildrop(user);
  await drop.commit({ deleted: new Set([drop.messages.length - 1]), retrieved: new Set() });
}

const trashOf = (root: string, user: string) => readdirSync(path.join(root, user, '.Trash', 'cur'));

t.test('sweeps at start and on each timer; retention counted from now; a failing user does not stop the others', async (t) => {
  const root = t.testdir({});
  const store = await MaildirStore.open({ root });
  t.teardown(() => store.close());
  await trashOne(store, alice, 'a1');
  await trashOne(store, bob, 'b1');
  let now = Date.now();
  const timers = new ManualTimers();
  const purgedSeen: number[] = [];
  const broken: MailUser = { name: '../outside' };
  const sweeper = new TrashSweeper({
    store,
    users: () => [broken, alice, bob],
    retentionDays: 30,
    logger: silentLogger(),
    now: () => now,
    timers,
    onPurged: (n) => purgedSeen.push(n),
  });
  t.teardown(() => sweeper.close());

  sweeper.start();
  await timers.running('trash-sweep');
  t.same(timers.pending('trash-sweep'), [TRASH_SWEEP_INTERVAL_MS], 'the next sweep is scheduled after the first');
  t.equal(trashOf(root, 'alice').length, 1, 'a fresh Trash message is kept');

  now += 29 * DAY;
  t.same(await sweeper.sweep(), { users: 3, purged: 0, bytes: 0, failed: 1 }, 'not 30 days yet; the bad name is one failure');

  now += 2 * DAY;
  const sweeping = new Promise<void>((resolve) => {
    const wait = (): void => {
      if (purgedSeen.length === 2) resolve();
      else setImmediate(wait);
    };
    wait();
  });
  t.equal(timers.fire('trash-sweep'), 1, 'the hourly timer fires');
  await sweeping;
  t.same(purgedSeen, [1, 1], 'one message each from alice and bob');
  t.same(trashOf(root, 'bob'), []);
  t.same(trashOf(root, 'alice'), []);
  await timers.running('trash-sweep');
  t.same(timers.pending('trash-sweep'), [TRASH_SWEEP_INTERVAL_MS], 'and the next one is scheduled');

  await sweeper.close();
  t.same(timers.pending('trash-sweep'), [], 'close cancels the timer');
});

t.test('retention 0 keeps Trash forever: no sweep, no timer', async (t) => {
  const store = new MemoryStore();
  await trashOne(store, alice, 'kept');
  const timers = new ManualTimers();
  const sweeper = new TrashSweeper({
    store,
    users: () => [alice],
    retentionDays: 0,
    logger: silentLogger(),
    timers,
    now: () => Date.now() + 36_500 * DAY,
  });
  t.equal(sweeper.isEnabled, false);
  sweeper.start();
  t.same(await sweeper.sweep(), { users: 0, purged: 0, bytes: 0, failed: 0 });
  t.equal(store.trash(alice).length, 1, 'a century later, still there');
  t.same(timers.pending('trash-sweep'), []);
  await sweeper.close();
});

t.test('serve: trashRetentionDays purges at start; the maildrop and young Trash stay', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({
      trashRetentionDays: 1,
      listeners: { pop3: '127.0.0.1:0', smtp: false, http: '127.0.0.1:0' },
    }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: {
      alice: {
        cur: {},
        new: { '1700000002.M1P1Q1.host': 'Subject: inbox\n\n' },
        tmp: {},
        '.Trash': { cur: {}, new: {}, tmp: {} },
      },
    },
  });
  // A message moved to Trash now is not a day old: it must survive the start-up sweep.
  const store = await MaildirStore.open({ root: path.join(dir, 'mail') });
  await trashOne(store, alice, 'young');
  await store.close();
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const http = portOf(lines.find((l) => l.name === 'http')?.address ?? ':0');
  let text = '';
  for (let i = 0; i < 200 && !serve.stderr.includes('trash sweep done'); i++) {
    text = (await fetchFrom(http, 'GET', '/metrics')).body;
  }
  t.match(serve.stderr, /trash sweep done/, 'the start-up sweep ran');
  text = (await fetchFrom(http, 'GET', '/metrics')).body;
  t.equal(parseMetrics(text).get('maildird_trash_purged_total'), 0, 'nothing old enough');
  t.equal(trashOf(path.join(dir, 'mail'), 'alice').length, 1);
  t.ok(existsSync(path.join(dir, 'mail', 'alice', 'new', '1700000002.M1P1Q1.host')));
  t.equal((await serve.stop()).code, 0);
});
