/**
 * Build the one Config: defaults < file < env < flags (DESIGN "Names and
 * defaults"), each value validated by validate.ts, cross-key rules checked,
 * the result deeply frozen. The caller (src/cli, the only code that reads
 * the command-line arguments and the environment) hands them in.
 */
import { readFile, stat } from 'node:fs/promises';
import { hostname as machineHostname } from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../errors.js';
import {
  IMPLICIT_TLS_LISTENERS,
  LISTENER_NAMES,
  formatAddress,
  type Config,
  type ListenAddress,
  type ListenerName,
} from './config.js';
import { CONFIG_ENV, DEFAULT_CONFIG_FILE, KEYS, envName, type ConfigFlag, type KeySpec, type RawValue } from './schema.js';
import { coerce, type Origin } from './validate.js';

/** sysexits.h codes used for configuration problems. */
const EX_USAGE = 64;
const EX_NOINPUT = 66;
const EX_CONFIG = 78;

export type FlagValues = Readonly<Partial<Record<ConfigFlag, string | readonly string[] | undefined>>>;

export interface LoadConfigOptions {
  /** Flag values by flag name (`tls-cert`), undefined when not given. */
  readonly flags?: FlagValues;
  /** The environment (only `MAILDIRD_*` names are read). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Folder that relative paths from env and flags (and `./maildird.json`) resolve against. */
  readonly cwd: string;
  /** The machine's host name, the default for `hostname` (os.hostname() when omitted). */
  readonly hostname?: string;
}

/** One source's values by key, each with where it came from. */
type Layer = ReadonlyMap<string, { readonly raw: RawValue; readonly origin: Origin }>;

/** Read, layer, validate and freeze the configuration. Throws ConfigError only. */
export async function loadConfig(options: LoadConfigOptions): Promise<Config> {
  const flags = options.flags ?? {};
  const env = options.env ?? {};
  const cwd = path.resolve(options.cwd);

  const configFile = await findConfigFile(flags, env, cwd);
  const configDir = configFile === undefined ? cwd : path.dirname(configFile);
  const layers: Layer[] = [defaultLayer(configDir, options.hostname ?? machineHostname())];
  if (configFile !== undefined) layers.push(await fileLayer(configFile));
  layers.push(envLayer(env, cwd), flagLayer(flags, cwd));

  // DESIGN: POP3 127.0.0.1:1110 and SMTP 127.0.0.1:2525 only when no source names any listener;
  // once one is named, exactly the named ones are served.
  const isAnyListenerSet = layers.slice(1).some((layer) => LISTENER_NAMES.some((name) => layer.has(`listeners.${name}`)));

  const values = new Map<string, unknown>();
  for (const spec of KEYS as readonly KeySpec[]) {
    for (const layer of layers) {
      const given = layer.get(spec.key);
      if (given === undefined) continue;
      // Every given value is checked, also one a later source overrides: a typo in the file shows up now.
      const value = coerce(spec, given.raw, given.origin);
      if (layer === layers[0] && isAnyListenerSet && spec.key.startsWith('listeners.')) continue;
      values.set(spec.key, value);
    }
    if (!values.has(spec.key) && spec.key.startsWith('listeners.')) values.set(spec.key, false);
  }

  const config = nest(values) as unknown as Omit<Config, 'configFile'>;
  checkCrossKeys(config);
  return deepFreeze({ configFile, ...config });
}

async function findConfigFile(
  flags: FlagValues,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Promise<string | undefined> {
  const fromFlag = flags.config;
  if (Array.isArray(fromFlag)) throw new ConfigError('--config given more than once', { key: 'config', exitCode: EX_USAGE });
  const explicit = (fromFlag as string | undefined) ?? nonEmpty(env[CONFIG_ENV]);
  if (explicit !== undefined) return path.resolve(cwd, explicit);
  const implicit = path.join(cwd, DEFAULT_CONFIG_FILE);
  try {
    return (await stat(implicit)).isFile() ? implicit : undefined;
  } catch {
    return undefined;
  }
}

function defaultLayer(configDir: string, hostname: string): Layer {
  const origin: Origin = { label: 'the defaults', baseDir: configDir, exitCode: EX_CONFIG };
  const layer = new Map<string, { raw: RawValue; origin: Origin }>();
  for (const spec of KEYS as readonly KeySpec[]) layer.set(spec.key, { raw: spec.default, origin });
  // A machine whose name is not a valid host name (rare, but seen in containers) falls back to localhost.
  layer.set('hostname', { raw: /^[A-Za-z0-9.-]{1,253}$/.test(hostname) ? hostname : 'localhost', origin });
  return layer;
}

async function fileLayer(file: string): Promise<Layer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a folder' : `cannot be read (${code})`;
    throw new ConfigError(`config file ${file}: ${why}`, { key: 'config', exitCode: EX_NOINPUT, cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file}: not valid JSON (${jsonErrorWhere(err, text)})`, {
      key: 'config',
      exitCode: EX_CONFIG,
      cause: err,
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file}: must hold a JSON object`, { key: 'config', exitCode: EX_CONFIG });
  }
  const values = new Map<string, RawValue>();
  flatten(parsed as Record<string, RawValue>, '', file, values);
  const origin: Origin = { label: file, baseDir: path.dirname(file), exitCode: EX_CONFIG };
  return new Map([...values].map(([key, raw]) => [key, { raw, origin }]));
}

/** `{ "tls": { "cert": "x" } }` -> `tls.cert = "x"`; unknown keys are errors (they are usually typos). */
function flatten(object: Record<string, RawValue>, prefix: string, file: string, out: Map<string, RawValue>): void {
  for (const [name, raw] of Object.entries(object)) {
    const key = prefix + name;
    if (KEYS.some((spec) => spec.key === key)) {
      out.set(key, raw);
    } else if (
      raw !== null &&
      typeof raw === 'object' &&
      !Array.isArray(raw) &&
      KEYS.some((spec) => spec.key.startsWith(`${key}.`))
    ) {
      flatten(raw as Record<string, RawValue>, `${key}.`, file, out);
    } else {
      const siblings = [...new Set(KEYS.filter((s) => s.key.startsWith(prefix)).map((s) => s.key.slice(prefix.length).split('.')[0]))];
      throw new ConfigError(`config file ${file}: unknown key ${key}; allowed${prefix === '' ? '' : ` in ${prefix.slice(0, -1)}`}: ${siblings.join(', ')}`, {
        key,
        exitCode: EX_CONFIG,
      });
    }
  }
}

/** Turn V8's "at position N" into a line and column a person can find. */
function jsonErrorWhere(err: unknown, text: string): string {
  const message = (err as Error).message;
  const match = /position (\d+)/.exec(message);
  if (match === null) return message;
  const position = Number(match[1]);
  const before = text.slice(0, position).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function envLayer(env: Readonly<Record<string, string | undefined>>, cwd: string): Layer {
  const layer = new Map<string, { raw: RawValue; origin: Origin }>();
  for (const spec of KEYS as readonly KeySpec[]) {
    const name = envName(spec);
    const raw = nonEmpty(env[name]);
    if (raw !== undefined) layer.set(spec.key, { raw, origin: { label: name, baseDir: cwd, exitCode: EX_CONFIG } });
  }
  return layer;
}

function flagLayer(flags: FlagValues, cwd: string): Layer {
  const layer = new Map<string, { raw: RawValue; origin: Origin }>();
  for (const spec of KEYS as readonly KeySpec[]) {
    if (spec.flag === undefined) continue;
    const raw = flags[spec.flag as ConfigFlag];
    if (raw === undefined) continue;
    if (Array.isArray(raw) && spec.value.type !== 'domains') {
      throw new ConfigError(`--${spec.flag} given more than once`, { key: spec.key, exitCode: EX_USAGE });
    }
    layer.set(spec.key, { raw: raw as RawValue, origin: { label: `--${spec.flag}`, baseDir: cwd, exitCode: EX_USAGE } });
  }
  return layer;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function nest(values: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of values) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts.at(-1) as string] = value;
  }
  return root;
}

/** Rules between keys, checked once the values are typed. */
function checkCrossKeys(config: Omit<Config, 'configFile'>): void {
  if ((config.tls.cert === undefined) !== (config.tls.key === undefined)) {
    const missing = config.tls.cert === undefined ? 'tls.cert' : 'tls.key';
    const given = missing === 'tls.cert' ? 'tls.key' : 'tls.cert';
    throw new ConfigError(`${given} is set but ${missing} is not; allowed: both or neither`, {
      key: missing,
      exitCode: EX_CONFIG,
    });
  }
  for (const name of IMPLICIT_TLS_LISTENERS) {
    const address = config.listeners[name];
    if (address !== false && config.tls.cert === undefined) {
      throw new ConfigError(
        `listeners.${name} is ${formatAddress(address)} but it needs tls.cert and tls.key (--tls-cert, --tls-key); allowed: set both, or turn ${name} off`,
        { key: `listeners.${name}`, exitCode: EX_CONFIG },
      );
    }
  }
  const taken: { readonly name: ListenerName; readonly address: ListenAddress }[] = [];
  for (const name of LISTENER_NAMES) {
    const address = config.listeners[name];
    if (address === false || (address.kind === 'tcp' && address.port === 0)) continue;
    const other = taken.find((entry) => isSameSocket(entry.address, address));
    if (other !== undefined) {
      throw new ConfigError(
        `listeners.${name} (${formatAddress(address)}) uses the same address as listeners.${other.name} (${formatAddress(other.address)}); allowed: one listener per address`,
        { key: `listeners.${name}`, exitCode: EX_CONFIG },
      );
    }
    taken.push({ name, address });
  }
}

/** Two listeners collide on the same socket path, or on one port where either binds every address or both the same host. */
function isSameSocket(a: ListenAddress, b: ListenAddress): boolean {
  if (a.kind === 'unix' || b.kind === 'unix') return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path;
  return a.port === b.port && (a.host === undefined || b.host === undefined || a.host === b.host);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
