/**
 * `npm run stress` (timing part): how long a POP3 server takes to refuse a
 * known user's wrong password and an unknown user, for users files of
 * three kinds (SHA512-CRYPT as in Dovecot trees, ARGON2ID as `maildird
 * user add` writes, PLAIN), through test/helpers/auth-timing.ts. Each
 * attempt comes from its own address with its own user name, so the
 * failed-login throttle stays out of the figures. Prints the percentiles
 * and writes them to test/stress/results/timing-<date>.json.
 *
 * Fails when the replies differ, or when the median of one kind is more
 * than twice the other's and more than 1 ms apart (the noise of this
 * shared machine stays well inside that; the defect this found was 35x).
 *
 *   tsx test/stress/timing.ts [--attempts 200]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureLoginTiming, type TimingFigures } from '../helpers/auth-timing.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

const attempts = arg('attempts', 200);
const started = Date.now();
const runs: TimingFigures[] = [];
// ARGON2ID costs ~0.3-0.5 s per check here: fewer attempts keep the run bounded.
for (const [scheme, n] of [['SHA512-CRYPT', attempts], ['ARGON2ID', Math.ceil(attempts / 4)], ['PLAIN', attempts]] as const) {
  const dir = mkdtempSync(join(tmpdir(), 'maildird-timing-'));
  try {
    const f = await measureLoginTiming({ dir, scheme, attempts: n });
    runs.push(f);
    const row = (p: TimingFigures['unknownUser']) => `p10 ${p.p10} / p50 ${p.p50} / p90 ${p.p90} / p99 ${p.p99} ms`;
    process.stdout.write(`timing ${scheme} (${n} each): known user, wrong password ${row(f.knownWrongPassword)}; unknown user ${row(f.unknownUser)}; median ratio ${f.medianRatio}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const problems = runs.flatMap((r) => [
  ...(r.replies.known.length === 1 && r.replies.unknown.length === 1 && r.replies.known[0] === r.replies.unknown[0] ? [] : [`${r.scheme}: replies differ`]),
  ...((r.medianRatio <= 2 && r.medianRatio >= 0.5) || Math.abs(r.unknownUser.p50 - r.knownWrongPassword.p50) < 1
    ? []
    : [`${r.scheme}: median ratio ${r.medianRatio}`]),
]);
const result = { date: new Date().toISOString(), passed: problems.length === 0, problems, seconds: Math.round((Date.now() - started) / 1000), runs };
const dir = join(ROOT, 'test/stress/results');
mkdirSync(dir, { recursive: true });
const out = join(dir, `timing-${result.date.slice(0, 10)}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`timing stress: ${result.seconds} s, ${result.passed ? 'PASSED' : `FAILED: ${problems.join('; ')}`}; figures in ${out}\n`);
process.exitCode = result.passed ? 0 : 1;
