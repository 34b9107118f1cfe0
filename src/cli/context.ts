/**
 * How a command handler reaches its I/O and reports its exit code: main()
 * passes a RunContext through yargs' parse context (no module state, so two
 * main() calls in one process do not share anything).
 */
import type { CliIo } from './io.js';

export const RUN_KEY = '__maildirdRun';

export interface RunContext {
  readonly io: CliIo;
  /** What main() resolves to once the handler returns. */
  exitCode: number;
}

export function runContextOf(argv: Readonly<Record<string, unknown>>): RunContext {
  const run = argv[RUN_KEY] as RunContext | undefined;
  if (run === undefined) throw new Error('command run outside main()');
  return run;
}
