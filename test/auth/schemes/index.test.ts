import t from 'tap';
import { generatableSchemes, lookupScheme, supportedSchemes } from '../../../src/auth/schemes/index.js';

t.test('looks schemes up without regard to case, with encoding suffixes', async (t) => {
  t.match(lookupScheme('plain'), { name: 'PLAIN', encoding: undefined });
  t.match(lookupScheme('SHA256.HEX'), { name: 'SHA256', encoding: 'hex' });
  t.match(lookupScheme('sha512.b64'), { name: 'SHA512', encoding: 'base64' });
  t.match(lookupScheme('PLAIN.BASE64'), { name: 'PLAIN', encoding: 'base64' });
  t.equal(lookupScheme('SHA256.ROT13'), undefined, 'unknown suffix');
  t.equal(lookupScheme('SHA512-CRYPT.HEX'), undefined, 'no suffix on text schemes');
  t.equal(lookupScheme('NOPE'), undefined);
  t.equal(lookupScheme(''), undefined);
});

t.test('lists what it verifies and what it generates', async (t) => {
  const supported = supportedSchemes();
  for (const name of ['PLAIN', 'SHA512-CRYPT', 'SHA256-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'ARGON2I', 'SSHA256', 'SSHA512', 'SHA256', 'SHA512', 'MD5-CRYPT']) {
    t.ok(supported.includes(name), name);
  }
  t.notOk(generatableSchemes().includes('DES-CRYPT'));
  t.ok(generatableSchemes().includes('ARGON2ID'));
});
