/**
 * Seeds for the fuzz tests: fixed by default so `npm test` is reproducible,
 * overridable with FUZZ_SEED=<n> to explore, and always printed so a failure
 * names the seed that reproduces it (fast-check also prints seed and path).
 */
import type { Test } from 'tap';

export const DEFAULT_FUZZ_SEED = 20261123;

/** The run's seed: FUZZ_SEED from the environment, else the fixed default. */
export function fuzzSeed(): number {
  const text = process.env['FUZZ_SEED'];
  if (text !== undefined && /^-?\d{1,10}$/.test(text)) return Number(text) | 0;
  return DEFAULT_FUZZ_SEED;
}

/** Print the seed as a TAP comment (seen on failure and with --reporter=tap). */
export function announceSeed(t: Test, seed: number, what: string): void {
  t.comment(`${what}: seed ${seed} (rerun with FUZZ_SEED=${seed})`);
}

/**
 * A small deterministic PRNG (mulberry32) for session generators that run
 * outside fast-check's shrinking (socket sessions cannot shrink usefully).
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
