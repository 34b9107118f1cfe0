/**
 * `maildird user add|passwd|del|list [--users FILE] [NAME]`: edit the users
 * file (Dovecot passwd-file format) through the auth editor, which rewrites
 * it atomically (temp file, fsync, rename). New passwords get the default
 * scheme ({ARGON2ID}). Passwords come from a no-echo prompt on a terminal
 * (typed twice) or one line of stdin otherwise; never from a flag, where
 * they would show in `ps` and shell history.
 */
import type { Argv, CommandModule } from 'yargs';
import { userNameProblem } from '../../auth/passwd-file.js';
import { addUser, deleteUser, listUsers, setPassword, type EditOptions } from '../../auth/users-file-editor.js';
import { loadConfig } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import { runContextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { writeOut, type CliIo } from '../io.js';
import { readNewPassword } from '../password-input.js';
import { configOptions, flagValues, type ConfigArgs } from './config-options.js';

type UserArgs = ConfigArgs & { readonly name?: string };

/** The users file and how names match in it (the server's caseInsensitiveUsers). */
async function usersFile(argv: Readonly<Record<string, unknown>>, io: CliIo): Promise<{ file: string; options: EditOptions }> {
  const config = await loadConfig({ flags: flagValues(argv), env: io.env, cwd: io.cwd });
  return { file: config.users, options: { caseInsensitive: config.caseInsensitiveUsers } };
}

/** Refuse a name that could not be one visible folder before asking for a password. */
function checkedName(name: string | undefined): string {
  if (name === undefined) throw new ConfigError('a user NAME is required', { exitCode: EXIT.usage });
  const problem = userNameProblem(name);
  if (problem !== undefined) {
    throw new ConfigError(`invalid user name ${JSON.stringify(name)}: ${problem}`, { key: 'name', exitCode: EXIT.dataError });
  }
  return name;
}

const withName = (yargs: Argv<object>): Argv<UserArgs> =>
  yargs
    .positional('name', { type: 'string', describe: 'user name: `alice`, or a full address `alice@example.org`' })
    .options(configOptions('user')) as unknown as Argv<UserArgs>;

/** `add` and `passwd`: a checked name, a new password read safely, one edit of the file. */
function passwordCommand(
  command: string,
  describe: string,
  edit: (file: string, name: string, password: string, options: EditOptions) => Promise<void>,
  done: (name: string, file: string) => string,
): CommandModule<object, UserArgs> {
  return {
    command,
    describe,
    builder: withName,
    handler: async (argv) => {
      const { io } = runContextOf(argv);
      const name = checkedName(argv.name);
      const { file, options } = await usersFile(argv, io);
      const password = await readNewPassword(io.stdin, io.stderr);
      await edit(file, name, password, options);
      await writeOut(io.stdout, done(name, file));
    },
  };
}

const add = passwordCommand(
  'add <name>',
  'Add a user; the password is prompted for (or read as one line from stdin)',
  addUser,
  (name, file) => `added ${name} to ${file}\n`,
);

const passwd = passwordCommand(
  'passwd <name>',
  "Set a user's password (prompted for, or one line from stdin)",
  setPassword,
  (name, file) => `changed the password of ${name} in ${file}\n`,
);

const del: CommandModule<object, UserArgs> = {
  command: 'del <name>',
  describe: 'Remove a user from the users file (the mail folder is left alone)',
  builder: withName,
  handler: async (argv) => {
    const { io } = runContextOf(argv);
    const name = checkedName(argv.name);
    const { file, options } = await usersFile(argv, io);
    await deleteUser(file, name, options);
    await writeOut(io.stdout, `removed ${name} from ${file}\n`);
  },
};

const list: CommandModule<object, ConfigArgs> = {
  command: 'list',
  describe: 'List the users, one per line',
  builder: (yargs: Argv<object>) => yargs.options(configOptions('user')) as unknown as Argv<ConfigArgs>,
  handler: async (argv) => {
    const { io } = runContextOf(argv);
    const { file, options } = await usersFile(argv, io);
    const users = await listUsers(file, options);
    await writeOut(io.stdout, users.map((user) => `${user}\n`).join(''));
  },
};

export const userCommand: CommandModule<object, object> = {
  command: 'user',
  describe: 'Add, change, remove or list users in the users file',
  builder: (yargs: Argv<object>) =>
    yargs
      .command([add, passwd, del, list] as CommandModule<object, object>[])
      .demandCommand(1, 'name a user command: add, passwd, del or list')
      .example('$0 user add alice --users /etc/maildird/passwd', 'prompts twice for the password')
      .example('printf "%s\\n" "$PW" | $0 user passwd alice', 'scripted: one line from stdin'),
  handler: () => {
    // demandCommand above makes yargs answer `maildird user` alone with a usage error.
  },
};
