import t from 'tap';
import { CRYPT_ALPHABET, cryptBase64, randomCryptSalt } from '../../../src/auth/schemes/crypt-base64.js';

t.test('writes groups least significant six bits first', async (t) => {
  t.equal(cryptBase64(Uint8Array.of(0, 0, 0), [[0, 1, 2, 4]]), '....');
  t.equal(cryptBase64(Uint8Array.of(0, 0, 1), [[0, 1, 2, 4]]), '/...', 'value 1 is the second character');
  t.equal(cryptBase64(Uint8Array.of(0xff, 0xff, 0xff), [[0, 1, 2, 4]]), 'zzzz');
  t.equal(cryptBase64(Uint8Array.of(0x3f), [[-1, -1, 0, 2]]), 'z.', 'a missing byte counts as zero');
});

t.test('random salts use the crypt alphabet', async (t) => {
  const salt = randomCryptSalt(64);
  t.equal(salt.length, 64);
  for (const ch of salt) t.ok(CRYPT_ALPHABET.includes(ch));
});
