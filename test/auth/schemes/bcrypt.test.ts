import t from 'tap';
import { generateBcrypt, isBcryptHash, verifyBcrypt } from '../../../src/auth/schemes/bcrypt.js';
import { bare, label, loadVectors, wrongPassword } from '../../helpers/auth-vectors.js';

const vectors = loadVectors().filter((v) => /^\$2[aby]\$/.test(bare(v.hash)));
const utf8 = (s: string) => Buffer.from(s, 'utf8');

t.test('verifies every bcrypt hash the real tools made ($2y$, $2b$, $2a$)', async (t) => {
  t.ok(vectors.length >= 15, `${vectors.length} vectors`);
  for (const prefix of ['$2y$', '$2b$', '$2a$']) {
    t.ok(vectors.some((v) => bare(v.hash).startsWith(prefix)), `has ${prefix}`);
  }
  for (const v of vectors) {
    t.same(await verifyBcrypt(utf8(v.password), bare(v.hash)), { ok: true }, label(v));
    t.match(await verifyBcrypt(utf8(wrongPassword(v.password)), bare(v.hash)), { ok: false, reason: 'mismatch' });
  }
});

t.test('keys on the first 72 bytes, as every bcrypt does', async (t) => {
  const long = loadVectors().find((v) => v.command.join(' ') === `mkpasswd -m bcrypt ${v.password}` && v.password.length > 72);
  t.ok(long, 'a mkpasswd vector with a password over 72 bytes');
  if (long === undefined) return;
  const hash = bare(long.hash);
  t.same(await verifyBcrypt(utf8(long.password.slice(0, 72)), hash), { ok: true }, 'the first 72 bytes suffice');
  t.same(await verifyBcrypt(utf8(long.password.slice(0, 72) + 'anything'), hash), { ok: true });
  t.match(await verifyBcrypt(utf8(long.password.slice(0, 71)), hash), { ok: false });
});

t.test('the empty password matches libxcrypt', async (t) => {
  // python3: crypt.crypt('', '$2b$04$abcdefghijklmnopqrstuu') with libxcrypt (Debian 12).
  const hash = '$2b$04$abcdefghijklmnopqrstuubyCG3zY1GIXMyxfivm.ClDiInHzxjiq';
  t.same(await verifyBcrypt(utf8(''), hash), { ok: true });
  t.match(await verifyBcrypt(utf8('\0'), hash), { ok: true }, 'a lone NUL is the same key, as in C');
  t.match(await verifyBcrypt(utf8('a'), hash), { ok: false, reason: 'mismatch' });
});

t.test('refuses what it cannot check with a reason', async (t) => {
  const good = bare(vectors[0]?.hash ?? '');
  t.match(await verifyBcrypt(utf8('x'), '$2x$' + good.slice(4)), { ok: false, reason: 'unsupported' });
  t.match(await verifyBcrypt(utf8('x'), good.slice(0, -1)), { ok: false, reason: 'malformed-hash' });
  t.match(await verifyBcrypt(utf8('x'), '$2y$03$' + good.slice(7)), { ok: false, reason: 'malformed-hash' });
  t.match(await verifyBcrypt(utf8('x'), '$2y$32$' + good.slice(7)), { ok: false, reason: 'malformed-hash' });
});

t.test('generates $2y$ hashes at cost 10 that verify', async (t) => {
  const hash = await generateBcrypt(utf8('new pw'), 4);
  t.match(hash, /^\$2y\$04\$/);
  t.ok(isBcryptHash(hash));
  t.same(await verifyBcrypt(utf8('new pw'), hash), { ok: true });
  t.match(await generateBcrypt(utf8('pw')), /^\$2y\$10\$/);
  t.same(await verifyBcrypt(utf8(''), await generateBcrypt(utf8(''), 4)), { ok: true }, 'empty password round trip');
});
