/**
 * The one validator: turns a raw value from any source (JSON types from the
 * file, strings from env and flags) into the typed value its KeySpec asks
 * for, or throws a ConfigError that names the key, the source, the value
 * and what is allowed.
 */
import { isIP } from 'node:net';
import * as path from 'node:path';
import { ConfigError } from '../errors.js';
import type { ListenAddress } from './config.js';
import type { KeySpec, RawValue, ValueType } from './schema.js';

/** Where a raw value came from: shown in errors, and the folder its relative paths resolve against. */
export interface Origin {
  /** `the defaults`, the config file's path, `MAILDIRD_POP3`, `--pop3`. */
  readonly label: string;
  readonly baseDir: string;
  /** EX_USAGE (64) for a bad flag value; EX_CONFIG (78) for the rest. */
  readonly exitCode: number;
}

/** Longest Unix socket path: sun_path holds 108 bytes on Linux, one for the NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
const MAX_TEXT_LENGTH = 200;
const MAX_COMMAND_LENGTH = 4096;

/** What `value` allows, in words, for the error message. */
export function allowedText(value: ValueType): string {
  switch (value.type) {
    case 'path':
      return value.isOptional ? 'a file path, or null for none' : 'a file or folder path';
    case 'boolean':
      return 'true or false';
    case 'integer':
      return `an integer from ${value.min} to ${value.max}`;
    case 'size':
      return 'a number of octets, optionally with K, M, G or T (1K = 1024)';
    case 'enum':
      return `one of ${value.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'listener':
      return (
        '[HOST:]PORT with PORT 0-65535 (a bare PORT binds every address, 0 picks a free port, IPv6 as [::1]:PORT)' +
        (value.isPathAllowed ? `, a Unix socket PATH containing "/" (at most ${MAX_SOCKET_PATH_BYTES} bytes)` : '') +
        ', or false to turn it off'
      );
    case 'domains':
      return 'a list of domain names (letters, digits, hyphens, dots; from env: comma-separated)';
    case 'hostname':
      return 'a host name (letters, digits, hyphens, dots)';
    case 'layout':
      return 'a relative template using %u, %n, %d, %h or %% (with at least one of %u, %n, %h), no ".." parts';
    case 'networks':
      return 'a list of IP networks in CIDR form, e.g. ["10.0.0.0/8", "2001:db8::/32"] (a bare address is one host; from env: comma-separated)';
    case 'command':
      return `a command line for /bin/sh -c (one line of printable ASCII, at most ${MAX_COMMAND_LENGTH} characters), or null for none`;
    case 'text':
      return (
        `one line of printable ASCII, 1-${MAX_TEXT_LENGTH} characters` +
        (value.forbidden.length > 0 ? `, without ${[...value.forbidden].join(' or ')}` : '')
      );
    default:
      return assertNever(value);
  }
}

/** Validate `raw` for `spec`. Throws ConfigError naming key, origin, value and what is allowed. */
export function coerce(spec: KeySpec, raw: RawValue, origin: Origin): unknown {
  const result = convert(spec.value, raw, origin);
  if (result === INVALID) {
    throw new ConfigError(
      `invalid value for ${spec.key} from ${origin.label}: ${show(raw)}; allowed: ${allowedText(spec.value)}`,
      { key: spec.key, exitCode: origin.exitCode },
    );
  }
  return result;
}

const INVALID = Symbol('invalid');

function convert(value: ValueType, raw: RawValue, origin: Origin): unknown {
  switch (value.type) {
    case 'path':
      if (raw === null && value.isOptional) return undefined;
      if (typeof raw !== 'string' || raw.length === 0 || raw.includes('\0')) return INVALID;
      return path.resolve(origin.baseDir, raw);
    case 'boolean':
      return toBoolean(raw);
    case 'integer': {
      const n = toInteger(raw);
      return n === INVALID || n < value.min || n > value.max ? INVALID : n;
    }
    case 'size':
      return toSize(raw);
    case 'enum':
      return typeof raw === 'string' && value.values.includes(raw) ? raw : INVALID;
    case 'listener':
      return toListener(raw, value.isPathAllowed, origin.baseDir);
    case 'domains':
      return toDomains(raw);
    case 'hostname':
      return typeof raw === 'string' && isHostName(raw) ? raw : INVALID;
    case 'layout':
      return typeof raw === 'string' && isLayout(raw) ? raw : INVALID;
    case 'text':
      return typeof raw === 'string' && isText(raw, value.forbidden) ? raw : INVALID;
    case 'networks':
      return toNetworks(raw);
    case 'command':
      if (raw === null || raw === '') return undefined;
      return typeof raw === 'string' && raw.trim() !== '' && isText(raw, '', MAX_COMMAND_LENGTH) ? raw : INVALID;
    default:
      return assertNever(value);
  }
}

function toBoolean(raw: RawValue): boolean | typeof INVALID {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw !== 'string') return INVALID;
  switch (raw.toLowerCase()) {
    case 'true':
    case 'yes':
    case 'on':
    case '1':
      return true;
    case 'false':
    case 'no':
    case 'off':
    case '0':
      return false;
    default:
      return INVALID;
  }
}

function toInteger(raw: RawValue): number | typeof INVALID {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : INVALID;
  if (typeof raw !== 'string' || !/^[0-9]{1,15}$/.test(raw)) return INVALID;
  return Number(raw);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

function toSize(raw: RawValue): number | typeof INVALID {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw : INVALID;
  if (typeof raw !== 'string') return INVALID;
  const match = /^([0-9]{1,15})([kmgt]?)$/i.exec(raw);
  if (match === null) return INVALID;
  const n = Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? Number.NaN);
  return Number.isSafeInteger(n) ? n : INVALID;
}

function toPort(text: string): number | typeof INVALID {
  if (!/^[0-9]{1,5}$/.test(text)) return INVALID;
  const port = Number(text);
  return port <= 65535 ? port : INVALID;
}

function toListener(raw: RawValue, isPathAllowed: boolean, baseDir: string): ListenAddress | false | typeof INVALID {
  if (raw === false || raw === null || raw === 'false') return false;
  if (typeof raw === 'number') {
    return Number.isInteger(raw) && raw >= 0 && raw <= 65535 ? { kind: 'tcp', host: undefined, port: raw } : INVALID;
  }
  if (typeof raw !== 'string' || raw.length === 0) return INVALID;
  if (raw.includes('/')) {
    if (!isPathAllowed || raw.includes('\0')) return INVALID;
    const socketPath = path.resolve(baseDir, raw);
    return Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES ? { kind: 'unix', path: socketPath } : INVALID;
  }
  let host: string | undefined;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:([^:]+)$/.exec(raw);
  if (v6 !== null) {
    host = v6[1] ?? '';
    portText = v6[2] ?? '';
    if (isIP(host) !== 6) return INVALID;
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon < 0) {
      portText = raw;
    } else {
      host = raw.slice(0, colon);
      portText = raw.slice(colon + 1);
      if (host === '*') host = undefined;
      else if (isIP(host) !== 4 && !isHostName(host)) return INVALID;
    }
  }
  const port = toPort(portText);
  return port === INVALID ? INVALID : { kind: 'tcp', host, port };
}

/** RFC 1123 section 2.1 host names: LDH labels of 1-63 characters, 253 in all; a trailing dot is allowed. */
function isHostName(name: string): boolean {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return false;
  return bare.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

function toDomains(raw: RawValue): readonly string[] | typeof INVALID {
  let list: readonly RawValue[];
  if (typeof raw === 'string') list = raw.split(',').map((part) => part.trim());
  else if (Array.isArray(raw)) list = raw;
  else return INVALID;
  const domains: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string' || !isHostName(item)) return INVALID;
    const domain = item.toLowerCase().replace(/\.$/, '');
    if (!domains.includes(domain)) domains.push(domain);
  }
  return domains;
}

/** CIDR networks, normalised to `address/prefix` (a bare address gets /32 or /128). */
function toNetworks(raw: RawValue): readonly string[] | typeof INVALID {
  let list: readonly RawValue[];
  if (typeof raw === 'string') list = raw.trim() === '' ? [] : raw.split(',').map((part) => part.trim());
  else if (Array.isArray(raw)) list = raw;
  else return INVALID;
  const networks: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') return INVALID;
    const match = /^([^/]+)(?:\/([0-9]{1,3}))?$/.exec(item);
    const address = match?.[1] ?? '';
    const family = isIP(address);
    if (family === 0) return INVALID;
    const max = family === 4 ? 32 : 128;
    const prefix = match?.[2] === undefined ? max : Number(match[2]);
    if (prefix > max) return INVALID;
    const network = `${address.toLowerCase()}/${prefix}`;
    if (!networks.includes(network)) networks.push(network);
  }
  return networks;
}

function isLayout(template: string): boolean {
  if (template.length === 0 || template.startsWith('/') || template.includes('\0')) return false;
  let hasUserPart = false;
  for (let i = 0; i < template.length; i++) {
    if (template.charAt(i) !== '%') continue;
    const key = template.charAt(++i);
    if (!'undh%'.includes(key) || key === '') return false;
    if (key === 'u' || key === 'n' || key === 'h') hasUserPart = true;
  }
  if (!hasUserPart) return false;
  return template.split('/').every((part) => part !== '..' && part !== '.');
}

function isText(text: string, forbidden: string, maxLength = MAX_TEXT_LENGTH): boolean {
  if (text.length === 0 || text.length > maxLength) return false;
  for (const char of text) {
    const code = char.charCodeAt(0);
    if (code < 0x20 || code > 0x7e || forbidden.includes(char)) return false;
  }
  return true;
}

function show(raw: RawValue): string {
  const text = JSON.stringify(raw) ?? String(raw);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function assertNever(value: never): never {
  throw new Error(`unhandled value type ${JSON.stringify(value)}`);
}
