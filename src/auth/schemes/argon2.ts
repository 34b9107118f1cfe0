/**
 * Argon2 (RFC 9106): Dovecot's `{ARGON2ID}` and `{ARGON2I}`, stored as the
 * PHC string libsodium writes, `$argon2id$v=19$m=65536,t=3,p=1$salt$hash`
 * (base64 without padding). Computed by hash-wasm in WebAssembly; compared
 * by us in constant time (hash-wasm's argon2Verify uses `===`).
 *
 * A stored value names its own cost, so a hostile or mistyped one could ask
 * for gigabytes: values over MAX_MEMORY_KIB, MAX_ITERATIONS or
 * MAX_PARALLELISM are refused as unsupported rather than computed.
 */
import { randomBytes } from 'node:crypto';
import { argon2d, argon2i, argon2id } from 'hash-wasm';
import { equalBytes } from './compare.js';
import { MATCH, malformed, mismatch, unsupported, type PasswordCheck, type TextScheme } from './scheme.js';

export type Argon2Variant = 'argon2id' | 'argon2i' | 'argon2d';

export interface Argon2Params {
  /** Memory in KiB (the PHC `m`). */
  readonly memorySize: number;
  /** Passes over memory (the PHC `t`). */
  readonly iterations: number;
  /** Lanes (the PHC `p`). */
  readonly parallelism: number;
}

/** What `doveadm pw -s ARGON2ID` writes (libsodium's defaults): 64 MiB, 3 passes, 1 lane. */
export const ARGON2_DEFAULTS: Argon2Params = Object.freeze({ memorySize: 65536, iterations: 3, parallelism: 1 });

export const MAX_MEMORY_KIB = 1024 * 1024;
export const MAX_ITERATIONS = 64;
export const MAX_PARALLELISM = 64;
const HASH_LENGTH = 32;
const SALT_LENGTH = 16;

const PHC = /^\$(argon2id|argon2i|argon2d)\$(?:v=(\d+)\$)?m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,10})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

interface ParsedArgon2 extends Argon2Params {
  readonly variant: Argon2Variant;
  readonly version: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function parse(value: string): ParsedArgon2 | string {
  const m = PHC.exec(value);
  if (m === null) return 'not an Argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)';
  const [, variant, version, mem, t, p, salt, hash] = m as unknown as [string, Argon2Variant, string | undefined, string, string, string, string, string];
  return {
    variant,
    // A string without v= is version 0x10 (1.0), per the reference implementation.
    version: version === undefined ? 16 : Number(version),
    memorySize: Number(mem),
    iterations: Number(t),
    parallelism: Number(p),
    salt: Buffer.from(salt, 'base64'),
    hash: Buffer.from(hash, 'base64'),
  };
}

function compute(variant: Argon2Variant, options: Parameters<typeof argon2id>[0]): Promise<Uint8Array> {
  const run = variant === 'argon2id' ? argon2id : variant === 'argon2i' ? argon2i : argon2d;
  return run({ ...options, outputType: 'binary' });
}

export async function verifyArgon2(password: Uint8Array, value: string): Promise<PasswordCheck> {
  const parsed = parse(value);
  if (typeof parsed === 'string') return malformed(parsed);
  if (parsed.version !== 19) return unsupported(`Argon2 version ${parsed.version} (only 19, i.e. 1.3)`);
  if (parsed.memorySize > MAX_MEMORY_KIB || parsed.iterations > MAX_ITERATIONS || parsed.parallelism > MAX_PARALLELISM) {
    return unsupported(`Argon2 cost m=${parsed.memorySize},t=${parsed.iterations},p=${parsed.parallelism} over the limits`);
  }
  if (parsed.hash.length < 4 || parsed.salt.length < 8) return malformed('Argon2 salt or hash too short');
  // hash-wasm refuses an empty password; no empty password ever matches here.
  if (password.length === 0) return mismatch('empty password');
  let computed: Uint8Array;
  try {
    computed = await compute(parsed.variant, {
      password,
      salt: parsed.salt,
      iterations: parsed.iterations,
      parallelism: parsed.parallelism,
      memorySize: parsed.memorySize,
      hashLength: parsed.hash.length,
    });
  } catch (err) {
    return unsupported(`Argon2 failed: ${(err as Error).message}`);
  }
  return equalBytes(computed, parsed.hash) ? MATCH : mismatch();
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

export async function generateArgon2(
  variant: Argon2Variant,
  password: Uint8Array,
  params: Argon2Params = ARGON2_DEFAULTS,
): Promise<string> {
  if (password.length === 0) throw new RangeError('Argon2 needs a non-empty password');
  const salt = randomBytes(SALT_LENGTH);
  const hash = await compute(variant, { password, salt, ...params, hashLength: HASH_LENGTH });
  return `$${variant}$v=19$m=${params.memorySize},t=${params.iterations},p=${params.parallelism}$${b64(salt)}$${b64(hash)}`;
}

function argon2Scheme(variant: Argon2Variant): TextScheme {
  return {
    kind: 'text',
    // The value names its own variant; Dovecot's ARGON2I and ARGON2ID both
    // hand it to libsodium's verifier, which reads the variant from it.
    verify: verifyArgon2,
    generate: (password) => generateArgon2(variant, password),
  };
}

export const argon2Schemes: Readonly<Record<string, TextScheme>> = {
  ARGON2ID: argon2Scheme('argon2id'),
  ARGON2I: argon2Scheme('argon2i'),
};
