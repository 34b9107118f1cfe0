/** Assertions shared by the Maildir adapter tests. */
import type { Test } from 'tap';
import { StorageError, type StorageErrorKind } from '../../src/errors.js';

/** `promise` rejects with a StorageError of `kind`. */
export async function rejectsKind(t: Test, promise: Promise<unknown>, kind: StorageErrorKind, what?: string): Promise<void> {
  const label = what ?? `rejects with ${kind}`;
  try {
    await promise;
    t.fail(`${label}: resolved`);
  } catch (err) {
    t.ok(err instanceof StorageError, `${label}: a StorageError`, { found: err });
    t.equal((err as StorageError).kind, kind, label);
  }
}

/** `fn` throws a StorageError of `kind`. */
export function throwsKind(t: Test, fn: () => unknown, kind: StorageErrorKind, what?: string): void {
  const label = what ?? `throws ${kind}`;
  try {
    fn();
    t.fail(`${label}: returned`);
  } catch (err) {
    t.ok(err instanceof StorageError, `${label}: a StorageError`, { found: err });
    t.equal((err as StorageError).kind, kind, label);
  }
}
