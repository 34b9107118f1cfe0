import t from 'tap';
import { decodeHex, decodeStoredBase64, equalBytes, equalSecrets, equalStrings } from '../../../src/auth/schemes/compare.js';

t.test('equality helpers', async (t) => {
  t.ok(equalBytes(Buffer.from('abc'), Buffer.from('abc')));
  t.notOk(equalBytes(Buffer.from('abc'), Buffer.from('abd')));
  t.notOk(equalBytes(Buffer.from('abc'), Buffer.from('abcd')), 'different lengths, no throw');
  t.ok(equalSecrets(Buffer.from('s'), Buffer.from('s')));
  t.notOk(equalSecrets(Buffer.from('s'), Buffer.from('s\0')));
  t.notOk(equalSecrets(Buffer.alloc(0), Buffer.from('x')));
  t.ok(equalSecrets(Buffer.alloc(0), Buffer.alloc(0)));
  t.ok(equalStrings('$6$x', '$6$x'));
  t.notOk(equalStrings('$6$x', '$6$y'));
});

t.test('strict decoders', async (t) => {
  t.same(decodeStoredBase64('c2VjcmV0'), Buffer.from('secret'));
  t.same(decodeStoredBase64('YQ'), Buffer.from('a'), 'padding optional, as in Dovecot');
  t.equal(decodeStoredBase64('c2Vj cmV0'), undefined, 'no whitespace');
  t.equal(decodeStoredBase64('c2VjcmV0='.repeat(2)), undefined, 'padding only at the end');
  t.equal(decodeStoredBase64('a'), undefined, 'impossible length');
  t.same(decodeHex('00ff'), Buffer.from([0, 255]));
  t.equal(decodeHex('0g'), undefined);
  t.equal(decodeHex('abc'), undefined, 'odd length');
});
