/**
 * The composition root: parse the command line with yargs and run one
 * command. `bin/maildird` calls main(process.argv.slice(2)) and exits with
 * the number it resolves to. Errors end here as one line on stderr
 * (`maildird: <message>`) and a sysexits code, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { commands } from './commands.js';
import { type RunContext, RUN_KEY } from './context.js';
import { EXIT } from './exit-codes.js';
import { describeFailure, UsageError } from './failure.js';
import { processIo, type CliIo } from './io.js';

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const run: RunContext = { io, exitCode: EXIT.ok };
  try {
    await yargs([...argv])
      .scriptName('maildird')
      .usage('$0 <command> [options]\n\nA POP3 and SMTP/LMTP mail server for Maildir trees.')
      .command([...commands])
      .demandCommand(1, 'name a command: serve, user or check (maildird --help lists them)')
      .recommendCommands()
      .strict()
      .parserConfiguration({ 'camel-case-expansion': false })
      .help()
      .alias('help', 'h')
      .version(packageVersion())
      .wrap(Math.min(100, process.stdout.columns ?? 80))
      .exitProcess(false)
      .fail((message: string | undefined, err: Error | undefined) => {
        // yargs calls this for its own usage errors (message) and for errors thrown by handlers (err).
        // yargs reports some usage mistakes (a flag missing its value) as a YError in `err`.
        if (err === undefined || err.name === 'YError') throw new UsageError(message ?? err?.message ?? 'invalid command line');
        throw err;
      })
      .parseAsync([...argv], { [RUN_KEY]: run });
    return run.exitCode;
  } catch (err) {
    const failure = describeFailure(err);
    io.stderr.write(`maildird: ${failure.message}\n`);
    return failure.exitCode;
  }
}

function packageVersion(): string {
  try {
    // dist/cli/main.js and src/cli/main.ts both sit two levels below the package root.
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
