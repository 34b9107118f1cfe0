/**
 * The configuration flags as yargs options, described from the key schema
 * (one source for README, help and validation). yargs only collects them
 * as strings; loadConfig validates them with the other sources.
 */
import type { Options } from 'yargs';
import type { FlagValues } from '../../config/load.js';
import { CONFIG_ENV, KEYS, envName, type ConfigFlag, type KeySpec } from '../../config/schema.js';

/** The flags each command takes: a contract that scripts and docs rely on. */
const COMMAND_FLAGS = {
  serve: [
    'config',
    'root',
    'users',
    'pop3',
    'pop3s',
    'smtp',
    'submission',
    'smtps',
    'lmtp',
    'http',
    'tls-cert',
    'tls-key',
    'domain',
    'log-level',
    'workers',
  ],
  check: ['config', 'root'],
  user: ['config', 'users'],
} as const satisfies Record<string, readonly ConfigFlag[]>;

export type FlagCommand = keyof typeof COMMAND_FLAGS;

/** Parsed flag values as yargs hands them over (kebab-case keys; a repeated flag is an array). */
export type ConfigArgs = { readonly [flag in ConfigFlag]?: string | readonly string[] };

const PLACEHOLDER: Readonly<Record<string, string>> = {
  path: 'FILE',
  listener: '[HOST:]PORT',
  domains: 'NAME',
  enum: 'LEVEL',
};

export function configOptions(command: FlagCommand): Record<string, Options> {
  const options: Record<string, Options> = {};
  for (const flag of COMMAND_FLAGS[command]) {
    if (flag === 'config') {
      options[flag] = {
        type: 'string',
        requiresArg: true,
        describe: `Configuration file (JSON); default ./maildird.json when present [env ${CONFIG_ENV}]`,
      };
      continue;
    }
    const spec = (KEYS as readonly KeySpec[]).find((s) => s.flag === flag);
    if (spec === undefined) throw new Error(`no config key for --${flag}`);
    const placeholder = flag === 'root' ? 'DIR' : spec.key === 'listeners.lmtp' ? '[HOST:]PORT|PATH' : PLACEHOLDER[spec.value.type];
    options[flag] = {
      type: 'string',
      requiresArg: true,
      describe: `${placeholder ?? 'VALUE'}: ${spec.doc} [env ${envName(spec)}]`,
    };
  }
  return options;
}

/** The config flags from yargs' argv, for loadConfig. */
export function flagValues(argv: Readonly<Record<string, unknown>>): FlagValues {
  const flags: Partial<Record<ConfigFlag, string | readonly string[]>> = {};
  for (const flag of new Set<ConfigFlag>(Object.values(COMMAND_FLAGS).flat())) {
    const value = argv[flag];
    if (typeof value === 'string' || typeof value === 'boolean' || Array.isArray(value)) {
      // `--no-pop3` (yargs' boolean negation) arrives as false: the same as `--pop3 false`.
      flags[flag] = typeof value === 'boolean' ? String(value) : (value as string | readonly string[]);
    }
  }
  return flags;
}
