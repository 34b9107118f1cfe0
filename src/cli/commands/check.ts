/**
 * `maildird check [--root DIR] [--config FILE]`: walk a tree read-only
 * (storage/maildir/check.ts) and print a report a person can act on. Exit
 * 0 when the tree is clean, 1 when something needs a look. A live lock (a
 * POP3 session in progress) is shown but is not a problem.
 */
import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../../config/load.js';
import { checkTree, type CheckIssue, type CheckReport } from '../../storage/maildir/check.js';
import { runContextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { writeOut } from '../io.js';
import { requireFolder } from '../preflight.js';
import { configOptions, flagValues, type ConfigArgs } from './config-options.js';

export const checkCommand: CommandModule<object, ConfigArgs> = {
  command: 'check',
  describe: 'Report on a Maildir tree: users, counts, bytes and anything broken (read-only)',
  builder: (yargs: Argv<object>) =>
    yargs
      .options(configOptions('check'))
      .example('$0 check --root /srv/mail', 'exit 0 when clean, 1 when problems were found') as unknown as Argv<ConfigArgs>,
  handler: async (argv) => {
    const run = runContextOf(argv);
    const config = await loadConfig({ flags: flagValues(argv), env: run.io.env, cwd: run.io.cwd });
    await requireFolder(config.root, 'root', false);
    const report = await checkTree({ root: config.root, layout: config.layout, separators: [config.infoSeparator, ':', ';', '!'] });
    const { lines, problems } = formatReport(report, config.layout);
    await writeOut(run.io.stdout, `${lines.join('\n')}\n`);
    run.exitCode = problems === 0 ? EXIT.ok : EXIT.problemsFound;
  },
};

/** The report as text, and how many of its issues are problems. */
export function formatReport(report: CheckReport, layout: string): { lines: string[]; problems: number } {
  const lines = [`maildird check: ${report.root} (layout ${layout})`, ''];
  if (report.users.length === 0) {
    lines.push('no user folders found');
  } else {
    const rows = [
      ['user', 'form', 'messages', 'new', 'bytes', 'trash'],
      ...report.users.map((u) => [
        u.folder,
        u.form,
        String(u.messages),
        String(u.newMessages),
        String(u.bytes),
        `${u.trashMessages} (${u.trashBytes} bytes)`,
      ]),
    ];
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
    for (const row of rows) lines.push(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
  }
  const { users, messages, bytes } = report.totals;
  lines.push('', `total: ${users} ${users === 1 ? 'user' : 'users'}, ${messages} messages, ${bytes} bytes`);

  const problems = report.issues.filter((issue) => !(issue.kind === 'lock' && issue.state === 'live'));
  const notes = report.issues.filter((issue) => issue.kind === 'lock' && issue.state === 'live');
  if (notes.length > 0) {
    lines.push('', 'in use:');
    for (const issue of notes) lines.push(`  ${describeIssue(issue)}`);
  }
  if (problems.length > 0) {
    lines.push('', 'problems:');
    for (const issue of problems) lines.push(`  ${describeIssue(issue)}`);
  }
  lines.push('', problems.length === 0 ? 'no problems found' : `${problems.length} ${problems.length === 1 ? 'problem' : 'problems'} found`);
  return { lines, problems: problems.length };
}

function describeIssue(issue: CheckIssue): string {
  switch (issue.kind) {
    case 'unparsable':
      return `unparsable file ${issue.path}: ${issue.reason} (not listed)`;
    case 'duplicate-base':
      return `duplicate base name ${issue.base}: ${issue.paths.join(', ')} (the cur/ copy keeps the plain UIDL)`;
    case 'stale-tmp':
      return `stale tmp file ${issue.path}: ${hours(issue.ageMs)} old (removed at the next login)`;
    case 'journal':
      return `leftover batch journal ${issue.path} (rolled forward at the next login or start)`;
    case 'lock': {
      const owner = issue.owner === undefined ? '' : `, held by pid ${issue.owner.pid} on ${issue.owner.host}`;
      return issue.state === 'live'
        ? `lock ${issue.path}${owner}, refreshed ${seconds(issue.ageMs)} ago (a session is open)`
        : `stale lock ${issue.path}${owner}, ${seconds(issue.ageMs)} old (taken over at the next login)`;
    }
    case 'folder':
      return `folder ${issue.path}: ${issue.reason}`;
    default:
      return assertNever(issue);
  }
}

function hours(ms: number): string {
  return `${Math.floor(ms / 3_600_000)} hours`;
}

function seconds(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))} s`;
}

function assertNever(value: never): never {
  throw new Error(`unhandled check issue ${JSON.stringify(value)}`);
}
