import t from 'tap';
import { plainScheme, plainSchemes } from '../../../src/auth/schemes/plain.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

t.test('compares plaintext secrets in constant time, any length', async (t) => {
  t.same(plainScheme.verifyRaw(utf8('secret'), utf8('secret')), { ok: true });
  t.match(plainScheme.verifyRaw(utf8('secret'), utf8('secreT')), { ok: false, reason: 'mismatch' });
  t.match(plainScheme.verifyRaw(utf8('secret'), utf8('secret2')), { ok: false, reason: 'mismatch' }, 'prefix is not enough');
  t.match(plainScheme.verifyRaw(utf8(''), utf8('x')), { ok: false });
  t.same(plainScheme.verifyRaw(utf8('pässwörd'), utf8('pässwörd')), { ok: true });
});

t.test('answers to PLAIN, CLEAR and CLEARTEXT, stored as text', async (t) => {
  t.same(Object.keys(plainSchemes).sort(), ['CLEAR', 'CLEARTEXT', 'PLAIN']);
  t.equal(plainScheme.defaultEncoding, 'text');
  t.same(plainScheme.generateRaw?.(utf8('abc')), utf8('abc'));
});
