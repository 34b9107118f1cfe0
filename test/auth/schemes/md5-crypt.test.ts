import t from 'tap';
import { isMd5CryptHash, md5Crypt, md5CryptSalt, newMd5CryptSetting } from '../../../src/auth/schemes/md5-crypt.js';
import { bare, label, loadVectors, wrongPassword } from '../../helpers/auth-vectors.js';

const vectors = loadVectors().filter((v) => bare(v.hash).startsWith('$1$'));
const utf8 = (s: string) => Buffer.from(s, 'utf8');

t.test('reproduces every MD5-crypt hash the real tools made', async (t) => {
  t.ok(vectors.length >= 10, `${vectors.length} vectors`);
  for (const v of vectors) {
    const hash = bare(v.hash);
    t.equal(md5Crypt(utf8(v.password), hash), hash, label(v));
    t.not(md5Crypt(utf8(wrongPassword(v.password)), hash), hash, `wrong password: ${label(v)}`);
  }
  t.ok(vectors.some((v) => v.password === ''), 'includes the empty password');
  t.ok(vectors.some((v) => v.command.includes('$1$abcdefghijkl')), 'includes a salt cut at 8');
});

t.test('salts and shapes', async (t) => {
  t.equal(md5CryptSalt('$1$abcdefghijkl$x'), 'abcdefgh');
  t.equal(md5CryptSalt('$1$ab$x'), 'ab');
  t.equal(md5CryptSalt('$6$ab$x'), undefined);
  t.equal(md5Crypt(utf8('x'), '$5$abc'), undefined);
  t.ok(isMd5CryptHash('$1$saltsalt$5Jhcit4zN9UlGiA0txPkO0'));
  t.notOk(isMd5CryptHash('$1$saltsalt$5Jhcit4zN9UlGiA0txPkO'));
  const setting = newMd5CryptSetting();
  t.match(setting, /^\$1\$[./0-9A-Za-z]{8}$/);
  const hash = md5Crypt(utf8('pw'), setting) ?? '';
  t.ok(isMd5CryptHash(hash));
  t.equal(md5Crypt(utf8('pw'), hash), hash);
});
