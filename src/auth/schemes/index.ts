/**
 * The registry of password schemes by Dovecot name. Names are matched
 * without regard to case (`{plain}` is `{PLAIN}`, as in Dovecot), and an
 * encoded scheme may carry Dovecot's `.B64`/`.BASE64`/`.HEX` suffix.
 */
import { argon2Schemes } from './argon2.js';
import { cryptSchemes } from './crypt.js';
import { digestSchemes } from './digest.js';
import { plainSchemes } from './plain.js';
import type { PasswordScheme, StoredEncoding } from './scheme.js';

const REGISTRY: ReadonlyMap<string, PasswordScheme> = new Map<string, PasswordScheme>([
  ...Object.entries(plainSchemes),
  ...Object.entries(cryptSchemes),
  ...Object.entries(argon2Schemes),
  ...Object.entries(digestSchemes),
]);

export interface SchemeLookup {
  /** Upper-case base name (`SHA256` for `sha256.hex`). */
  readonly name: string;
  readonly scheme: PasswordScheme;
  /** The encoding a suffix asked for; undefined without one. */
  readonly encoding: StoredEncoding | undefined;
}

/** Find a scheme by its `{NAME}` text; undefined when unknown or when a suffix does not fit it. */
export function lookupScheme(text: string): SchemeLookup | undefined {
  const dot = text.indexOf('.');
  const name = (dot === -1 ? text : text.slice(0, dot)).toUpperCase();
  const scheme = REGISTRY.get(name);
  if (scheme === undefined) return undefined;
  if (dot === -1) return { name, scheme, encoding: undefined };
  // Suffixes only make sense for values that encode bytes.
  if (scheme.kind !== 'encoded') return undefined;
  const suffix = text.slice(dot + 1).toUpperCase();
  if (suffix === 'B64' || suffix === 'BASE64') return { name, scheme, encoding: 'base64' };
  if (suffix === 'HEX') return { name, scheme, encoding: 'hex' };
  return undefined;
}

/** Every scheme name maildird verifies, sorted. */
export function supportedSchemes(): string[] {
  return [...REGISTRY.keys()].sort();
}

/** Scheme names `hashPassword` can generate, sorted. */
export function generatableSchemes(): string[] {
  return [...REGISTRY.entries()]
    .filter(([, s]) => (s.kind === 'encoded' ? s.generateRaw !== undefined : s.generate !== undefined))
    .map(([name]) => name)
    .sort();
}
