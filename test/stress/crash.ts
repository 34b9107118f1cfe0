/**
 * `npm run stress` (crash part): the crash-consistency harness of
 * test/fuzz/crash.test.ts at stress size: `maildird serve` SIGKILLed
 * 300 times by default (half in trash mode, half in expunge mode), the
 * invariants checked after every restart (test/helpers/crash-harness.ts).
 * Prints the figures and writes them to test/stress/results/crash-<date>.json.
 *
 *   tsx test/stress/crash.ts [--kills 300] [--seed 1]
 *
 * Exit code 0 only when no invariant broke.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCrashCycles, type CrashFigures } from '../helpers/crash-harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

const kills = arg('kills', 300);
const seed = arg('seed', 1);
const started = Date.now();
const runs: CrashFigures[] = [];
for (const [i, mode] of (['trash', 'expunge'] as const).entries()) {
  const dir = mkdtempSync(join(tmpdir(), `maildird-crash-${mode}-`));
  try {
    const modeKills = Math.ceil(kills / 2);
    const figures = await runCrashCycles({
      dir,
      mode,
      seed: seed + i,
      kills: modeKills,
      onCycle: (cycle, f) => {
        if ((cycle + 1) % 25 === 0 || cycle + 1 === modeKills) {
          process.stdout.write(`${mode}: ${cycle + 1} kills, ${f.acknowledged} acknowledged, ${f.deletedConfirmed} deleted by QUIT +OK, ${f.violations.length} violations\n`);
        }
      },
    });
    runs.push(figures);
    for (const v of figures.violations.slice(0, 20)) process.stderr.write(`${mode}: ${v}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const sum = (key: keyof CrashFigures) => runs.reduce((s, r) => s + (r[key] as number), 0);
const result = {
  date: new Date().toISOString(),
  kills: sum('kills'),
  deliveriesSent: sum('deliveriesSent'),
  acknowledged: sum('acknowledged'),
  unacknowledgedFound: sum('unacknowledgedSeen'),
  unacknowledgedMissing: sum('unacknowledgedMissing'),
  quitOk: sum('quitOk'),
  deletedConfirmed: sum('deletedConfirmed'),
  quitCut: sum('quitCut'),
  lost: sum('lost'),
  duplicated: sum('duplicated'),
  loginsRefused: sum('loginsRefused'),
  violations: runs.reduce((s, r) => s + r.violations.length, 0),
  passed: runs.every((r) => r.violations.length === 0 && r.lost === 0 && r.duplicated === 0),
  seconds: Math.round((Date.now() - started) / 1000),
  runs: runs.map((r) => ({ ...r, violations: r.violations.slice(0, 50) })),
};
const dir = join(ROOT, 'test/stress/results');
mkdirSync(dir, { recursive: true });
const out = join(dir, `crash-${result.date.slice(0, 10)}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `crash stress: ${result.kills} SIGKILLs, ${result.acknowledged} messages acknowledged (250), ${result.deletedConfirmed} removed by QUIT +OK, ` +
    `${result.quitCut} QUITs cut by a kill; ${result.lost} lost, ${result.duplicated} duplicated, ${result.loginsRefused} logins refused after restart, ` +
    `${result.violations} violations; ${result.seconds} s, ${result.passed ? 'PASSED' : 'FAILED'}; figures in ${out}\n`,
);
process.exitCode = result.passed ? 0 : 1;
