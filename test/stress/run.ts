/**
 * `npm run stress`: every long run of issue 6, one after another, each a
 * child process that prints its figures and writes them to
 * test/stress/results/ (SECURITY.md quotes the last run):
 *
 *   fuzz.ts    100,000 POP3+SMTP fuzz sessions
 *   crash.ts   300 SIGKILLs of `maildird serve` under load, invariants checked
 *   load.ts    2,000 concurrent connections, slowloris, a per-IP flood
 *   faults.ts  every errno at every step of a delivery and a QUIT
 *   timing.ts  login refusal times, unknown user vs wrong password
 *
 * Extra arguments go to every part (`npm run stress -- --seed 5`); one
 * part alone: `npm run stress -- --only crash`. Exit code 0 only when
 * every part passed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PARTS = ['fuzz', 'crash', 'load', 'faults', 'timing'];

const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt === -1 ? undefined : args[onlyAt + 1];
const rest = onlyAt === -1 ? args : [...args.slice(0, onlyAt), ...args.slice(onlyAt + 2)];
const started = Date.now();
const outcomes: string[] = [];
let failed = false;
for (const part of PARTS) {
  if (only !== undefined && only !== part) continue;
  const partStart = Date.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `test/stress/${part}.ts`, ...rest], { cwd: ROOT, stdio: 'inherit' });
    child.on('close', resolve);
  });
  failed ||= code !== 0;
  outcomes.push(`${part}: ${code === 0 ? 'passed' : `FAILED (${code})`} in ${Math.round((Date.now() - partStart) / 1000)} s`);
}
process.stdout.write(`\nstress: ${outcomes.join('; ')}; total ${Math.round((Date.now() - started) / 1000)} s\n`);
process.exitCode = failed ? 1 : 0;
