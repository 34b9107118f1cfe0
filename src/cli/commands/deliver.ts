/**
 * `maildird deliver [--config FILE] [--root DIR] [--users FILE] [-f SENDER]
 * [-a ADDRESS]... [USER...]`: a local delivery agent (issue 4). One message
 * on stdin goes to the named users and addresses through deliverLocal
 * (src/smtp/local-delivery.ts): the same trace headers, size and hop checks
 * and durability as SMTP delivery, into the store and users that `serve`
 * uses. Postfix's `mailbox_command` or a pipe transport, fetchmail's `mda`
 * and procmail-style setups call it.
 *
 * The exit code is the MTA's contract (sysexits(3)): 0 delivered, 64 usage,
 * 65 message refused, 67 unknown user, 73 over quota or mailbox not
 * writable, 75 try again later. A failure prints one line on stderr, which
 * the MTA puts in its log or the bounce; success prints nothing.
 *
 * Problems of the setup (a broken config, an unreadable users file, a
 * missing root) exit 75, not 78 or 66: the message is fine, and an MTA
 * bounces on most other codes (Postfix's sys_exits table); EX_TEMPFAIL
 * keeps it queued until the operator has fixed the setup.
 */
import type { Argv, CommandModule } from 'yargs';
import { UserDatabase } from '../../auth/user-db.js';
import type { AliasTable } from '../../smtp/aliases.js';
import { loadConfig } from '../../config/load.js';
import { deliverLocal, EX_TEMPFAIL, EX_USAGE } from '../../smtp/local-delivery.js';
import { MaildirStore } from '../../storage/maildir/maildir-store.js';
import { storeOptionsFrom } from '../store-options.js';
import { runContextOf } from '../context.js';
import { AliasesFile } from '../aliases-file.js';
import { describeFailure } from '../failure.js';
import { writeOut, type CliIo } from '../io.js';
import { configOptions, flagValues, type ConfigArgs } from './config-options.js';

type DeliverArgs = ConfigArgs & {
  readonly names?: readonly string[];
  readonly f?: string;
  readonly a?: readonly string[];
};

export const deliverCommand: CommandModule<object, DeliverArgs> = {
  command: 'deliver [names..]',
  describe: 'Deliver one message from stdin to local users (an MDA for Postfix, fetchmail, procmail setups)',
  builder: (yargs: Argv<object>) =>
    yargs
      // --root from check's flags, --config and --users from user's.
      .options({ ...configOptions('check'), ...configOptions('user') })
      .positional('names', { type: 'string', array: true, describe: 'User names to deliver to' })
      .option('f', {
        type: 'string',
        requiresArg: true,
        describe: "SENDER: the envelope sender for Return-Path (default: from a leading 'From ' or Return-Path: line, else <>)",
      })
      .option('a', {
        type: 'string',
        array: true,
        requiresArg: true,
        describe: 'ADDRESS: a recipient address (user+tag@domain, an alias); repeatable',
      })
      .example('$0 deliver --config /etc/maildird/maildird.json alice < message.eml', 'exit 0 once the copy is durable')
      .example('$0 deliver -f sender@example.net -a alice+lists@example.org', 'Return-Path and recipient from the MTA')
      .epilog(
        'Exit codes (sysexits): 0 delivered, 64 usage, 65 message refused (too large, mail loop), ' +
          '67 unknown user (nothing delivered), 73 over quota or mailbox not writable, ' +
          '75 try again later (disk full, I/O error, broken setup).',
      ) as unknown as Argv<DeliverArgs>,
  handler: async (argv) => {
    const run = runContextOf(argv);
    const recipients = [...stringsOf(argv.names), ...stringsOf(argv.a)];
    run.exitCode = await deliver(argv, typeof argv.f === 'string' ? argv.f : undefined, recipients, run.io);
  },
};

async function deliver(argv: DeliverArgs, sender: string | undefined, recipients: readonly string[], io: CliIo): Promise<number> {
  if (recipients.length === 0) return fail(io, EX_USAGE, 'name a user or give -a ADDRESS');
  let store: MaildirStore | undefined;
  let users: UserDatabase | undefined;
  try {
    let code: number;
    let message: string;
    try {
      const config = await loadConfig({ flags: flagValues(argv), env: io.env, cwd: io.cwd });
      users = await UserDatabase.load({ file: config.users, domains: config.domains, caseInsensitive: config.caseInsensitiveUsers });
      // The same aliases `serve` uses (read once: one message, no watch).
      const aliases: AliasTable | undefined = config.aliases === undefined ? undefined : (await AliasesFile.load(config.aliases)).table;
      store = await MaildirStore.open({
        ...storeOptionsFrom(config),
        // One message in, out again: leftover journals are the next `serve`'s or login's business,
        // and walking the whole tree for them would cost every delivery.
        recoverAtStart: false,
      });
      const result = await deliverLocal({
        store,
        users,
        recipients,
        input: io.stdin,
        sender,
        localDomains: config.domains,
        aliases,
        hostname: config.hostname,
        maxBytes: config.limits.maxMessageBytes,
        filter:
          config.filter.command === undefined
            ? undefined
            : { command: config.filter.command, timeoutMs: config.filter.timeoutSeconds * 1000, env: io.env },
      });
      code = result.exitCode;
      message = result.message;
    } catch (err) {
      code = EX_TEMPFAIL;
      message = describeFailure(err).message;
    }
    return code === 0 ? code : await fail(io, code, message);
  } finally {
    await Promise.allSettled([store?.close(), users?.close()]);
  }
}

async function fail(io: CliIo, code: number, message: string): Promise<number> {
  await writeOut(io.stderr, `maildird deliver: ${message}\n`);
  return code;
}

function stringsOf(value: unknown): string[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map(String).filter((s) => s !== '');
}
