/**
 * `npm run stress` (load part): test/helpers/load-harness.ts at full size
 * against one `maildird serve` child (its open-files limit raised with
 * `ulimit -n`): 2,000 connections held idle (memory per idle connection
 * from /metrics), then all running whole POP3 downloads and SMTP sends at
 * once (event-loop lag from /metrics, monitorEventLoopDelay in the
 * server); 100 slowloris clients (a byte every 2 s, line deadline 10 s)
 * beside 200 normal sessions; a 400-connection flood from 127.0.0.2
 * beside sessions from other addresses. Prints the figures and writes them to
 * test/stress/results/load-<date>.json.
 *
 *   tsx test/stress/load.ts [--connections 2000] [--seed 1]
 *
 * Exit code 0 only when every count and reply was as expected.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad } from '../helpers/load-harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

const connections = arg('connections', 2000);
const seed = arg('seed', 1);
const options = {
  seed,
  connections,
  sources: 100,
  perIpLimit: 20,
  messagesPerUser: 3,
  slowloris: 50,
  slowByteMs: 2000,
  lineSeconds: 10,
  bystanders: 100,
  flood: 200,
};
const dir = mkdtempSync(join(tmpdir(), 'maildird-load-'));
let figures;
try {
  figures = await runLoad({ ...options, dir, log: (line) => process.stdout.write(`load: ${line}\n`) });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const half = Math.ceil(connections / 2);
const problems: string[] = [];
const expect = (ok: boolean, what: string) => {
  if (!ok) problems.push(what);
};
expect(figures.heldOpen.pop3 === half && figures.heldOpen.smtp === connections - half, `held ${JSON.stringify(figures.heldOpen)}`);
expect(figures.sessionErrors.length === 0, `${figures.sessionErrors.length} session errors: ${figures.sessionErrors.slice(0, 5).join('; ')}`);
expect(figures.sessionsOk.pop3 + figures.sessionsOk.smtp === connections, 'not every session completed');
expect(figures.slowNotCut === 0 && figures.slowCutOff.pop3 === options.slowloris && figures.slowCutOff.smtp === options.slowloris, 'slow clients not all cut off');
expect(figures.bystanderErrors.length === 0, `bystander errors: ${figures.bystanderErrors.slice(0, 5).join('; ')}`);
expect(figures.floodAccepted.pop3 === options.perIpLimit && figures.floodAccepted.smtp === options.perIpLimit, `flood accepted ${JSON.stringify(figures.floodAccepted)}`);
expect(figures.floodRefused.pop3 === options.flood - options.perIpLimit && figures.floodRefused.smtp === options.flood - options.perIpLimit, `flood refused ${JSON.stringify(figures.floodRefused)}`);
expect(figures.floodBystandersOk === 2 * options.bystanders, 'sessions during the flood failed');
const result = { date: new Date().toISOString(), options, passed: problems.length === 0, problems, ...figures };
const resultsDir = join(ROOT, 'test/stress/results');
mkdirSync(resultsDir, { recursive: true });
const out = join(resultsDir, `load-${result.date.slice(0, 10)}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
process.stdout.write(
  `load stress: ${connections} connections held at once (POP3 ${figures.heldOpen.pop3}, SMTP ${figures.heldOpen.smtp}), ` +
    `${(figures.rssPerIdleConnectionBytes / 1024).toFixed(1)} KiB RSS per idle connection (POP3 ${(figures.rssPerIdlePop3Bytes / 1024).toFixed(1)}, SMTP ${(figures.rssPerIdleSmtpBytes / 1024).toFixed(1)}; heap ${(figures.heapPerIdleConnectionBytes / 1024).toFixed(1)}); ` +
    `all ${figures.sessionsOk.pop3 + figures.sessionsOk.smtp} sessions at once in ${figures.workSeconds.toFixed(1)} s with ${figures.sessionErrors.length} errors ` +
    `(${figures.messagesRetrieved} messages retrieved, ${figures.messagesDelivered} delivered); event-loop lag p50 ${ms(figures.lagSeconds.p50)}, p99 ${ms(figures.lagSeconds.p99)}, max ${ms(figures.lagSeconds.max)}; ` +
    `slowloris ${figures.slowCutOff.pop3 + figures.slowCutOff.smtp} of ${2 * options.slowloris} cut off after ${figures.slowBytesBeforeCut.min}-${figures.slowBytesBeforeCut.max} bytes, ${figures.bystandersOk} sessions beside them ok; ` +
    `flood: ${figures.floodAccepted.pop3}+${figures.floodAccepted.smtp} of ${2 * options.flood} accepted, ${figures.floodBystandersOk} sessions from another address ok; ` +
    `${figures.seconds} s, ${result.passed ? 'PASSED' : `FAILED: ${problems.join('; ')}`}; figures in ${out}\n`,
);
process.exitCode = result.passed ? 0 : 1;
