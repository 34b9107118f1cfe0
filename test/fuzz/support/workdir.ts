/**
 * The fuzz files' work folder: t.testdir() normally; a private mkdtemp
 * folder when FUZZ_PRIVATE_DIR is set (the stress runner sets it), because
 * t.testdir() names its folder after the file and test, so a stress run and
 * an `npm test` at the same time would wipe each other's trees.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export function fuzzWorkDir(t: Test): string {
  if (process.env['FUZZ_PRIVATE_DIR'] === undefined) return t.testdir({});
  const dir = mkdtempSync(join(tmpdir(), 'maildird-fuzz-'));
  // At exit, after every teardown (servers and stores close first).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
