/**
 * `maildird config print [--config FILE] [flags]`: the effective
 * configuration (defaults < file < env < flags, as `serve` would build it)
 * as JSON in the config file's own shape, so it can be saved and used as a
 * config file; keys marked secret in the schema are masked.
 *
 * `maildird config check FILE`: build the configuration from FILE (and the
 * MAILDIRD_* environment, as `serve` would), then check what `serve` checks
 * before it starts: the root is a writable folder, the users file (and the
 * aliases file, when set) parses,
 * the certificate pair loads and matches. Nothing is started. Exit 0 with
 * `FILE: ok`, or the one-line error and its sysexits code (78 for an
 * invalid configuration, 66 for a missing file, 65 for a broken users file).
 */
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { UserDatabase } from '../../auth/user-db.js';
import { formatAddress, type Config, type ListenAddress } from '../../config/config.js';
import { loadConfig } from '../../config/load.js';
import { KEYS, type KeySpec } from '../../config/schema.js';
import { loadTlsFiles, secureContextFrom } from '../../protocol/tls.js';
import { runContextOf } from '../context.js';
import { writeOut } from '../io.js';
import { requireFolder, requireReadableFile } from '../preflight.js';
import { AliasesFile } from '../aliases-file.js';
import { configOptions, flagValues, type ConfigArgs } from './config-options.js';

/** What a secret value is printed as. */
export const MASK = '********';

const print: CommandModule<object, ConfigArgs> = {
  command: 'print',
  describe: 'Print the effective configuration as JSON (secrets masked)',
  builder: (yargs: Argv<object>) =>
    yargs
      .options(configOptions('serve'))
      .example('$0 config print --config /etc/maildird/maildird.json', 'what serve would run with')
      .example('MAILDIRD_POP3=110 $0 config print', 'the environment and flags count too') as unknown as Argv<ConfigArgs>,
  handler: async (argv) => {
    const { io } = runContextOf(argv);
    const config = await loadConfig({ flags: flagValues(argv), env: io.env, cwd: io.cwd });
    await writeOut(io.stdout, `${JSON.stringify(effectiveConfig(config), null, 2)}\n`);
  },
};

type CheckArgs = { readonly file?: string };

const check: CommandModule<object, CheckArgs> = {
  command: 'check <file>',
  describe: 'Validate a config file and what it names (root, users file, certificates) without starting',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('file', { type: 'string', describe: 'the config file (JSON)' })
      .example('$0 config check /etc/maildird/maildird.json', 'exit 0 when serve would start with it') as unknown as Argv<CheckArgs>,
  handler: async (argv) => {
    const { io } = runContextOf(argv);
    const file = argv.file ?? '';
    const config = await loadConfig({ flags: { config: file }, env: io.env, cwd: io.cwd });
    await checkConfig(config);
    await writeOut(io.stdout, `${config.configFile ?? file}: ok\n`);
  },
};

export const configCommand: CommandModule<object, object> = {
  command: 'config',
  describe: 'Print the effective configuration, or check a config file',
  builder: (yargs: Argv<object>) =>
    yargs
      .command([print, check] as CommandModule<object, object>[])
      .demandCommand(1, 'name a config command: print or check'),
  handler: () => {
    // demandCommand above answers `maildird config` alone with a usage error.
  },
};

/**
 * The configuration in the file's nested shape: listeners as `HOST:PORT`
 * (or false), unset paths as null, secret keys masked. Reading it back as
 * a config file gives the same configuration (secrets aside).
 */
export function effectiveConfig(config: Config, keys: readonly KeySpec[] = KEYS): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of keys) {
    const value = valueAt(config, spec.key);
    let shown: unknown;
    if (spec.isSecret === true && value !== undefined && value !== false && value !== null) shown = MASK;
    else if (spec.value.type === 'listener') shown = value === false ? false : formatAddress(value as ListenAddress);
    else shown = value ?? null;
    const parts = spec.key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts.at(-1) as string] = shown;
  }
  return out;
}

function valueAt(config: Config, key: string): unknown {
  let node: unknown = config;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

/** What `serve` checks before it opens a port, each failure one line naming the key. */
async function checkConfig(config: Config): Promise<void> {
  await requireFolder(config.root, 'root', true);
  await requireReadableFile(config.users, 'users');
  const users = await UserDatabase.load({ file: config.users, domains: config.domains, caseInsensitive: config.caseInsensitiveUsers });
  await users.close();
  if (config.aliases !== undefined) {
    await requireReadableFile(config.aliases, 'aliases');
    await (await AliasesFile.load(config.aliases)).close(); // a broken file: ConfigError (78) naming the line
  }
  const { cert, key } = config.tls;
  if (cert !== undefined && key !== undefined) {
    await requireReadableFile(cert, 'tls.cert');
    await requireReadableFile(key, 'tls.key');
    // A certificate that does not match its key is a ConfigError (78).
    secureContextFrom(await loadTlsFiles({ certFile: cert, keyFile: key }, (path) => readFile(path)));
  }
}
