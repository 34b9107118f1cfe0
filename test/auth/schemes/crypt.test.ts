import t from 'tap';
import { cryptSchemes, verifyCrypt } from '../../../src/auth/schemes/crypt.js';
import { bare, label, loadVectors, wrongPassword } from '../../helpers/auth-vectors.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const all = loadVectors();

t.test('verifies every crypt(3) vector by its prefix, whatever the scheme name', async (t) => {
  const crypts = all.filter((v) => v.expect === 'verifies' && /^\$(1|5|6|2[aby])\$/.test(bare(v.hash)));
  t.ok(crypts.length >= 50, `${crypts.length} vectors`);
  for (const v of crypts) {
    t.same(await verifyCrypt(utf8(v.password), bare(v.hash)), { ok: true }, label(v));
    t.match(await verifyCrypt(utf8(wrongPassword(v.password)), bare(v.hash)), { ok: false, reason: 'mismatch' });
  }
  // Dovecot calls crypt(3) for every *-CRYPT name, so a $5$ value under {SHA512-CRYPT} verifies.
  const sha256 = crypts.find((v) => bare(v.hash).startsWith('$5$'));
  const scheme = cryptSchemes['SHA512-CRYPT'];
  if (sha256 !== undefined && scheme !== undefined) {
    t.same(await scheme.verify(utf8(sha256.password), bare(sha256.hash)), { ok: true });
  }
});

t.test('reports formats it does not implement as unsupported (mkpasswd yescrypt, descrypt, scrypt)', async (t) => {
  const others = all.filter((v) => v.expect === 'unsupported');
  t.equal(others.length, 3);
  for (const v of others) {
    t.match(await verifyCrypt(utf8(v.password), v.hash), { ok: false, reason: 'unsupported' }, label(v));
  }
  t.match(await verifyCrypt(utf8('x'), '$sha1$1$abc$def'), { ok: false, reason: 'unsupported' });
});

t.test('malformed values fail with a reason', async (t) => {
  for (const value of ['', 'not a hash', '$6$salt', '$6$salt$short', '$1$salt$short', '$2y$10$short', '$5$rounds=x$a$b']) {
    t.match(await verifyCrypt(utf8('x'), value), { ok: false, reason: 'malformed-hash' }, JSON.stringify(value));
  }
});

t.test('{MD5} is MD5-crypt or PLAIN-MD5, as in Dovecot', async (t) => {
  const md5 = cryptSchemes['MD5'];
  t.ok(md5);
  if (md5 === undefined) return;
  const doveadm = all.find((v) => v.hash.startsWith('{MD5}'));
  t.ok(doveadm, 'doveadm pw -s MD5 vector');
  t.same(await md5.verify(utf8('secret'), bare(doveadm?.hash ?? '')), { ok: true });
  t.same(await md5.verify(utf8('secret'), '5ebe2294ecd0e0f08eab7690d2a6ee69'), { ok: true }, 'hex digest');
  t.same(await md5.verify(utf8('secret'), 'Xr4ilOzQ4PCOq3aQ0qbuaQ=='), { ok: true }, 'base64 digest');
  t.match(await md5.verify(utf8('wrong'), '5ebe2294ecd0e0f08eab7690d2a6ee69'), { ok: false, reason: 'mismatch' });
  t.match(await md5.verify(utf8('secret'), 'zz'), { ok: false, reason: 'malformed-hash' });
});

t.test('generates by scheme name', async (t) => {
  const expected: Record<string, RegExp> = {
    'SHA512-CRYPT': /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/,
    'SHA256-CRYPT': /^\$5\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{43}$/,
    'MD5-CRYPT': /^\$1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}$/,
    MD5: /^\$1\$/,
  };
  for (const [name, pattern] of Object.entries(expected)) {
    const hash = (await cryptSchemes[name]?.generate?.(utf8('pw'))) ?? '';
    t.match(hash, pattern, name);
    t.same(await verifyCrypt(utf8('pw'), hash), { ok: true }, `${name} verifies`);
  }
  t.equal(cryptSchemes['DES-CRYPT']?.generate, undefined, 'DES is never generated');
});
