import t from 'tap';
import { MATCH, malformed, mismatch, unsupported } from '../../../src/auth/schemes/scheme.js';

t.test('check results carry a reason and a detail', async (t) => {
  t.same(MATCH, { ok: true });
  t.ok(Object.isFrozen(MATCH));
  t.same(mismatch(), { ok: false, reason: 'mismatch', detail: 'password mismatch' });
  t.same(malformed('x'), { ok: false, reason: 'malformed-hash', detail: 'x' });
  t.same(unsupported('y'), { ok: false, reason: 'unsupported', detail: 'y' });
});
