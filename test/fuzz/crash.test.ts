/**
 * Crash consistency, short seeded version (issue 6): `maildird serve` as a
 * child, SMTP deliveries and POP3 DELE+QUIT sessions, SIGKILL at seeded
 * moments, restart, and DESIGN's invariants checked after each restart
 * (test/helpers/crash-harness.ts says which). `npm run stress` runs the
 * same harness with 300+ kills (test/stress/crash.ts).
 */
import t from 'tap';
import { runCrashCycles } from '../helpers/crash-harness.js';
import { announceSeed, fuzzSeed } from './support/seed.js';

const KILLS = Number(process.env['CRASH_KILLS'] ?? 5);

for (const mode of ['trash', 'expunge'] as const) {
  t.test(`${mode} mode: ${KILLS} SIGKILLs, nothing acknowledged lost or duplicated, no leftovers, logins at once`, async (t) => {
    const seed = fuzzSeed() + (mode === 'trash' ? 0 : 1);
    announceSeed(t, seed, `crash ${mode}`);
    const figures = await runCrashCycles({ dir: t.testdir({}), mode, seed, kills: KILLS });
    t.comment(
      `${mode}: ${figures.kills} kills, ${figures.acknowledged} acknowledged of ${figures.deliveriesSent} sent, ` +
        `${figures.quitOk} QUIT +OK removing ${figures.deletedConfirmed}, ${figures.quitCut} QUITs cut ` +
        `(${figures.cutDeletedApplied} applied, ${figures.cutDeletedNotApplied} not), ${figures.lost} lost, ${figures.duplicated} duplicated`,
    );
    t.same(figures.violations.slice(0, 20), [], 'every invariant held after every restart');
    t.equal(figures.kills, KILLS);
    t.equal(figures.lost, 0);
    t.equal(figures.duplicated, 0);
    t.equal(figures.loginsRefused, 0);
    t.ok(figures.acknowledged > 0, 'some deliveries were acknowledged');
    t.ok(figures.quitOk > 0, 'some QUITs answered +OK');
  });
}
