/**
 * `npm run stress` (disk-fault part): test/fuzz/disk-faults.test.ts with
 * FAULTS_FULL=1, every errno (ENOSPC, EIO, EACCES, EROFS) at every step of
 * an SMTP delivery and of a POP3 QUIT in both modes, plus the real tmpfs
 * cases where the machine allows them. Prints the counts and writes them
 * to test/stress/results/faults-<date>.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const started = Date.now();
const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
  const child = spawn('npx', ['tap', '--reporter=tap', '--timeout=1800', '--disable-coverage', 'test/fuzz/disk-faults.test.ts'], {
    cwd: ROOT,
    env: { ...process.env, FAULTS_FULL: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.on('close', (code) => resolve({ code, text }));
});
const cases = out.text.split('\n').filter((l) => /^ {8}(not )?ok \d+ - (ENOSPC|EIO|EACCES|EROFS|trash|expunge)/.test(l));
const failed = cases.filter((l) => /^ {8}not ok/.test(l));
const real = out.text.split('\n').filter((l) => /^ {4}(not )?ok \d+ - a real/.test(l)).map((l) => l.trim().replace(/ # time=.*$/, ''));
const result = {
  date: new Date().toISOString(),
  passed: out.code === 0,
  faultCases: cases.length,
  faultCasesFailed: failed.length,
  smtpCases: cases.filter((l) => /- (ENOSPC|EIO|EACCES|EROFS) at/.test(l)).length,
  pop3QuitCases: cases.filter((l) => /- (trash|expunge): /.test(l)).length,
  realFileSystem: real,
  seconds: Math.round((Date.now() - started) / 1000),
  failures: failed.map((l) => l.trim()),
};
const dir = join(ROOT, 'test/stress/results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `faults-${result.date.slice(0, 10)}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `faults stress: ${result.faultCases} injected fault cases (${result.smtpCases} SMTP delivery, ${result.pop3QuitCases} POP3 QUIT), ${result.faultCasesFailed} failed; ` +
    `real file system: ${real.join('; ') || 'none'}; ${result.seconds} s, ${result.passed ? 'PASSED' : 'FAILED'}; figures in ${file}\n`,
);
process.exitCode = result.passed ? 0 : 1;
