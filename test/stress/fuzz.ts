/**
 * `npm run stress` (fuzz part): the session fuzzers of test/fuzz at stress
 * size, 100,000 sessions by default (POP3 trash + expunge and SMTP), over
 * several seeds. Runs each fuzz file through tap with larger counts, adds
 * up the figures the files print, prints them and writes them as JSON to
 * test/stress/results/fuzz-<date>.json (SECURITY.md quotes the last run).
 *
 *   tsx test/stress/fuzz.ts [--sessions 100000] [--seeds 4] [--seed 1]
 *
 * Exit code 0 only when every run passed.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

const total = arg('sessions', 100_000);
const seeds = arg('seeds', 4);
const firstSeed = arg('seed', 1);

interface RunFigures {
  file: string;
  seed: number;
  ok: boolean;
  sessions: number;
  bytesSent: number;
  bytesReceived: number;
  lines: string[];
}

function runTap(file: string, env: Record<string, string>, seed: number): Promise<RunFigures> {
  return new Promise((resolve) => {
    const child = spawn('npx', ['tap', '--reporter=tap', '--timeout=3600', '--disable-coverage', file], {
      cwd: ROOT,
      env: { ...process.env, ...env, FUZZ_SEED: String(seed), FUZZ_PRIVATE_DIR: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      const lines = out.split('\n').filter((l) => /# (trash|expunge|smtp): \d+ sessions/.test(l) || /sessions logged in/.test(l));
      let sessions = 0;
      let bytesSent = 0;
      let bytesReceived = 0;
      for (const l of lines) {
        const m = /(\d+) sessions, (\d+) bytes sent, (\d+) bytes received/.exec(l);
        if (m === null) continue;
        sessions += Number(m[1]);
        bytesSent += Number(m[2]);
        bytesReceived += Number(m[3]);
      }
      const failures = out.split('\n').filter((l) => /^\s*not ok/.test(l) && !/# TODO/.test(l));
      for (const f of failures.slice(0, 20)) process.stderr.write(`${file} seed ${seed}: ${f.trim()}\n`);
      resolve({ file, seed, ok: code === 0, sessions, bytesSent, bytesReceived, lines: lines.map((l) => l.trim()) });
    });
  });
}

// POP3 runs two modes per file run; SMTP one. Half the sessions each way.
const perSeed = Math.ceil(total / seeds);
const pop3PerMode = Math.ceil(perSeed / 4);
const smtpPerRun = Math.ceil(perSeed / 2);
const started = Date.now();
const runs: RunFigures[] = [];
for (let i = 0; i < seeds; i++) {
  const seed = firstSeed + i;
  runs.push(await runTap('test/fuzz/pop3-sessions.test.ts', { FUZZ_POP3_SESSIONS: String(pop3PerMode) }, seed));
  runs.push(await runTap('test/fuzz/smtp-sessions.test.ts', { FUZZ_SMTP_SESSIONS: String(smtpPerRun) }, seed));
  const done = runs.reduce((s, r) => s + r.sessions, 0);
  process.stdout.write(`seed ${seed}: ${done} sessions so far, ${runs.every((r) => r.ok) ? 'all passed' : 'FAILURES'}\n`);
}
const figures = {
  date: new Date().toISOString(),
  sessions: runs.reduce((s, r) => s + r.sessions, 0),
  bytesSent: runs.reduce((s, r) => s + r.bytesSent, 0),
  bytesReceived: runs.reduce((s, r) => s + r.bytesReceived, 0),
  seeds: runs.map((r) => r.seed).filter((s, i, a) => a.indexOf(s) === i),
  passed: runs.every((r) => r.ok),
  seconds: Math.round((Date.now() - started) / 1000),
  runs: runs.map(({ file, seed, ok, sessions, lines }) => ({ file, seed, ok, sessions, lines })),
};
const dir = join(ROOT, 'test/stress/results');
mkdirSync(dir, { recursive: true });
const out = join(dir, `fuzz-${figures.date.slice(0, 10)}.json`);
writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
process.stdout.write(
  `fuzz stress: ${figures.sessions} sessions, ${figures.bytesSent} bytes sent, ${figures.bytesReceived} bytes received, ` +
    `${figures.seconds} s, ${figures.passed ? 'PASSED' : 'FAILED'}; figures in ${out}\n`,
);
process.exitCode = figures.passed ? 0 : 1;
