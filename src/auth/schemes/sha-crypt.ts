/**
 * SHA-256-crypt (`$5$`) and SHA-512-crypt (`$6$`), after Ulrich Drepper's
 * "Unix crypt using SHA-256 and SHA-512" (the spec glibc and libxcrypt
 * implement), on node:crypto. Settings: `$6$[rounds=N$]salt[$hash]`, salt at
 * most 16 characters (longer ones are cut, as the spec says), rounds
 * default 5000, clamped to 1000..999,999,999 per the spec, and written back
 * into the result only when the setting named them.
 */
import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { cryptBase64, randomCryptSalt } from './crypt-base64.js';

export type ShaCryptVariant = '5' | '6';

const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;
/** Rounds between yields to the event loop, so a high-rounds hash does not stall every other session. */
const ROUNDS_PER_SLICE = 4096;

interface VariantSpec {
  readonly algorithm: 'sha256' | 'sha512';
  readonly size: number;
  readonly hashLength: number;
  readonly order: readonly (readonly [number, number, number, number])[];
}

/** The byte orders of the spec's final encoding step (b64_from_24bit calls). */
const SHA256_ORDER: readonly (readonly [number, number, number, number])[] = [
  [0, 10, 20, 4], [21, 1, 11, 4], [12, 22, 2, 4], [3, 13, 23, 4], [24, 4, 14, 4],
  [15, 25, 5, 4], [6, 16, 26, 4], [27, 7, 17, 4], [18, 28, 8, 4], [9, 19, 29, 4],
  [-1, 31, 30, 3],
];

const SHA512_ORDER: readonly (readonly [number, number, number, number])[] = [
  [0, 21, 42, 4], [22, 43, 1, 4], [44, 2, 23, 4], [3, 24, 45, 4], [25, 46, 4, 4],
  [47, 5, 26, 4], [6, 27, 48, 4], [28, 49, 7, 4], [50, 8, 29, 4], [9, 30, 51, 4],
  [31, 52, 10, 4], [53, 11, 32, 4], [12, 33, 54, 4], [34, 55, 13, 4], [56, 14, 35, 4],
  [15, 36, 57, 4], [37, 58, 16, 4], [59, 17, 38, 4], [18, 39, 60, 4], [40, 61, 19, 4],
  [62, 20, 41, 4], [-1, -1, 63, 2],
];

const VARIANTS: Readonly<Record<ShaCryptVariant, VariantSpec>> = {
  '5': { algorithm: 'sha256', size: 32, hashLength: 43, order: SHA256_ORDER },
  '6': { algorithm: 'sha512', size: 64, hashLength: 86, order: SHA512_ORDER },
};

export interface ShaCryptSetting {
  readonly variant: ShaCryptVariant;
  /** Effective rounds (clamped). */
  readonly rounds: number;
  /** True when the setting named the rounds: the output repeats them. */
  readonly roundsCustom: boolean;
  /** The salt as used: at most 16 bytes. */
  readonly salt: Buffer;
  /** What followed the salt's `$` (the stored hash), if anything. */
  readonly hash: string | undefined;
}

/** Parse `$5$`/`$6$` settings or full hashes; undefined when it is not one. */
export function parseShaCryptSetting(text: string): ShaCryptSetting | undefined {
  const variant = text.startsWith('$5$') ? '5' : text.startsWith('$6$') ? '6' : undefined;
  if (variant === undefined) return undefined;
  let rest = text.slice(3);
  let rounds = ROUNDS_DEFAULT;
  let roundsCustom = false;
  const named = /^rounds=(\d{1,10})\$/.exec(rest);
  if (named !== null) {
    rounds = Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(named[1])));
    roundsCustom = true;
    rest = rest.slice(named[0].length);
  } else if (rest.startsWith('rounds=')) {
    return undefined;
  }
  const end = rest.indexOf('$');
  const saltText = end === -1 ? rest : rest.slice(0, end);
  // The spec counts the salt in bytes and cuts it at 16.
  const salt = Buffer.from(saltText, 'utf8').subarray(0, SALT_MAX);
  const hash = end === -1 ? undefined : rest.slice(end + 1);
  return { variant, rounds, roundsCustom, salt, hash };
}

/** True when `text` is a complete, well-formed SHA-crypt hash (the stored form). */
export function isShaCryptHash(text: string): boolean {
  const setting = parseShaCryptSetting(text);
  if (setting?.hash === undefined) return false;
  return new RegExp(`^[./0-9A-Za-z]{${VARIANTS[setting.variant].hashLength}}$`).test(setting.hash);
}

/**
 * crypt(password, setting) for `$5$`/`$6$`; resolves to the full hash
 * string, or undefined when `setting` is not a SHA-crypt setting.
 */
export async function shaCrypt(password: Uint8Array, setting: string): Promise<string | undefined> {
  const parsed = parseShaCryptSetting(setting);
  if (parsed === undefined) return undefined;
  const spec = VARIANTS[parsed.variant];
  const digest = await shaCryptDigest(spec, Buffer.from(password), parsed.salt, parsed.rounds);
  const prefix = `$${parsed.variant}$${parsed.roundsCustom ? `rounds=${parsed.rounds}$` : ''}`;
  return `${prefix}${parsed.salt.toString('utf8')}$${cryptBase64(digest, spec.order)}`;
}

/** A new setting: 16 random salt characters, rounds named only when not the default. */
export function newShaCryptSetting(variant: ShaCryptVariant, rounds = ROUNDS_DEFAULT): string {
  const named = rounds === ROUNDS_DEFAULT ? '' : `rounds=${rounds}$`;
  return `$${variant}$${named}${randomCryptSalt(SALT_MAX)}`;
}

/** The spec's steps 1-21; step numbers in comments follow the spec. */
async function shaCryptDigest(spec: VariantSpec, key: Buffer, salt: Buffer, rounds: number): Promise<Buffer> {
  const { algorithm, size } = spec;
  const hash = () => createHash(algorithm);

  // Steps 4-8: digest B = H(key salt key).
  const b = hash().update(key).update(salt).update(key).digest();

  // Steps 1-3, 9-12: digest A.
  const a = hash().update(key).update(salt);
  let count = key.length;
  for (; count > size; count -= size) a.update(b);
  a.update(b.subarray(0, count));
  for (count = key.length; count > 0; count >>= 1) a.update((count & 1) !== 0 ? b : key);
  const digestA = a.digest();

  // Steps 13-16: the P sequence, H(key repeated key.length times) stretched to key.length.
  const dp = hash();
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = stretch(dp.digest(), key.length);

  // Steps 17-20: the S sequence, H(salt repeated 16 + A[0] times) stretched to salt.length.
  const ds = hash();
  const saltRepeats = 16 + (digestA[0] ?? 0);
  for (let i = 0; i < saltRepeats; i++) ds.update(salt);
  const s = stretch(ds.digest(), salt.length);

  // Step 21: the rounds.
  let c = digestA;
  for (let round = 0; round < rounds; round++) {
    const ctx = hash();
    const odd = (round & 1) !== 0;
    ctx.update(odd ? p : c);
    if (round % 3 !== 0) ctx.update(s);
    if (round % 7 !== 0) ctx.update(p);
    ctx.update(odd ? c : p);
    c = ctx.digest();
    if (round % ROUNDS_PER_SLICE === ROUNDS_PER_SLICE - 1) await yieldToLoop();
  }
  return c;
}

function stretch(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = digest[i % digest.length] ?? 0;
  return out;
}
