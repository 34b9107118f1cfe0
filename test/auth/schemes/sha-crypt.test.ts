import t from 'tap';
import { isShaCryptHash, newShaCryptSetting, parseShaCryptSetting, shaCrypt } from '../../../src/auth/schemes/sha-crypt.js';
import { bare, label, loadVectors, wrongPassword } from '../../helpers/auth-vectors.js';

const vectors = loadVectors().filter((v) => /^\$[56]\$/.test(bare(v.hash)));
const utf8 = (s: string) => Buffer.from(s, 'utf8');

t.test('reproduces every SHA-crypt hash the real tools made', async (t) => {
  t.ok(vectors.length >= 30, `${vectors.length} vectors`);
  for (const v of vectors) {
    const hash = bare(v.hash);
    t.equal(await shaCrypt(utf8(v.password), hash), hash, label(v));
    t.not(await shaCrypt(utf8(wrongPassword(v.password)), hash), hash, `wrong password: ${label(v)}`);
  }
});

t.test('covers the spec edge cases through the vectors', async (t) => {
  const hashes = vectors.map((v) => bare(v.hash));
  t.ok(hashes.some((h) => h.startsWith('$6$rounds=10000$')), 'custom rounds');
  t.ok(hashes.some((h) => h.startsWith('$5$rounds=10000$saltstringsaltst$')), 'salt cut at 16');
  t.ok(vectors.some((v) => v.password === ''), 'empty password');
  t.ok(vectors.some((v) => Buffer.byteLength(v.password) > 64), 'password longer than a SHA-512 digest');
  t.ok(hashes.some((h) => h.startsWith('$6$rounds=1000$$')), 'empty salt');
});

t.test('parses settings as the spec says', async (t) => {
  t.match(parseShaCryptSetting('$6$rounds=10$roundstoolow'), { variant: '6', rounds: 1000, roundsCustom: true });
  t.match(parseShaCryptSetting('$5$rounds=9999999999$x'), { rounds: 999_999_999 });
  t.match(parseShaCryptSetting('$6$abc'), { rounds: 5000, roundsCustom: false, hash: undefined });
  t.equal(parseShaCryptSetting('$6$abcdefghijklmnopqrstuvwxyz$h')?.salt.toString(), 'abcdefghijklmnop');
  t.equal(parseShaCryptSetting('$6$rounds=x$abc'), undefined, 'rounds= without a number');
  t.equal(parseShaCryptSetting('$1$abc'), undefined);
  t.equal(await shaCrypt(utf8('x'), '$2y$10$abc'), undefined);
});

t.test('the spec clamps rounds below 1000 (glibc behaviour; libxcrypt refuses such settings)', async (t) => {
  // From Drepper's specification, section "Test vectors".
  t.equal(
    await shaCrypt(utf8('the minimum number is still observed'), '$6$rounds=10$roundstoolow'),
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  );
});

t.test('recognises complete hashes only', async (t) => {
  const full = bare(vectors[0]?.hash ?? '');
  t.ok(isShaCryptHash(full));
  t.notOk(isShaCryptHash(full.slice(0, -1)), 'one character short');
  t.notOk(isShaCryptHash('$6$salt'), 'setting without hash');
  t.notOk(isShaCryptHash('$6$salt$' + '!'.repeat(86)), 'bad alphabet');
});

t.test('new settings verify and carry 16 salt characters', async (t) => {
  for (const variant of ['5', '6'] as const) {
    const setting = newShaCryptSetting(variant);
    t.match(setting, new RegExp(`^\\$${variant}\\$[./0-9A-Za-z]{16}$`));
    const hash = await shaCrypt(utf8('pw'), setting);
    t.ok(hash !== undefined && isShaCryptHash(hash));
    t.equal(await shaCrypt(utf8('pw'), hash ?? ''), hash);
  }
  t.match(newShaCryptSetting('6', 6000), /^\$6\$rounds=6000\$/);
  t.notOk(newShaCryptSetting('6') === newShaCryptSetting('6'), 'random salts');
});
