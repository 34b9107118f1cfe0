/**
 * Load, short version (issue 6; `npm run stress` runs 2,000 connections,
 * test/stress/load.ts): one `maildird serve` child holds 200 connections
 * (POP3 and SMTP) which then all run whole sessions; slowloris clients are
 * cut off by the line deadline while other sessions complete; a flood from
 * one loopback address gets exactly the per-IP limit while another address
 * is served. Counts and replies only; memory and lag are printed, never
 * asserted (test/helpers/load-harness.ts).
 */
import t from 'tap';
import { runLoad } from '../helpers/load-harness.js';
import { announceSeed, fuzzSeed } from './support/seed.js';

t.test('200 held connections, slowloris cut off, per-IP flood limited, everyone else served', async (t) => {
  const seed = fuzzSeed();
  announceSeed(t, seed, 'load');
  const f = await runLoad({
    dir: t.testdir({}),
    seed,
    connections: 200,
    sources: 20,
    perIpLimit: 20,
    messagesPerUser: 2,
    slowloris: 3,
    slowByteMs: 100,
    lineSeconds: 1,
    bystanders: 5,
    flood: 30,
    log: (line) => t.comment(line),
  });
  t.same(f.heldOpen, { pop3: 100, smtp: 100 }, 'the server counted every held connection');
  t.same(f.sessionErrors, [], 'no session failed');
  t.same(f.sessionsOk, { pop3: 100, smtp: 100 }, 'every held connection completed its session');
  t.equal(f.messagesRetrieved, 200, 'every message retrieved');
  t.same(f.slowCutOff, { pop3: 3, smtp: 3 }, 'every slow client was cut off by the line deadline');
  t.equal(f.slowNotCut, 0);
  t.ok(f.slowReplies.every((r) => /^(-ERR|421)/.test(r)), `cut off with a reply: ${f.slowReplies.join(' | ')}`);
  t.same(f.bystanderErrors, [], 'sessions beside the slow clients and the flood completed');
  t.equal(f.bystandersOk, 10);
  t.same(f.floodAccepted, { pop3: 20, smtp: 20 }, 'the flooding address got exactly the per-IP limit');
  t.same(f.floodRefused, { pop3: 10, smtp: 10 }, 'and the per-IP refusal for the rest');
  t.same(f.floodOther, []);
  t.equal(f.floodBystandersOk, 10, 'another address was served during the flood');
  t.comment(
    `memory per idle connection: ${(f.rssPerIdleConnectionBytes / 1024).toFixed(1)} KiB RSS, ${(f.heapPerIdleConnectionBytes / 1024).toFixed(1)} KiB heap; ` +
      `event-loop lag under load p99 ${(f.lagSeconds.p99 * 1000).toFixed(1)} ms, max ${(f.lagSeconds.max * 1000).toFixed(1)} ms`,
  );
});
