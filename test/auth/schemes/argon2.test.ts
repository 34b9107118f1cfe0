import t from 'tap';
import { ARGON2_DEFAULTS, argon2Schemes, generateArgon2, verifyArgon2 } from '../../../src/auth/schemes/argon2.js';
import { bare, label, loadVectors, wrongPassword } from '../../helpers/auth-vectors.js';

const vectors = loadVectors().filter((v) => bare(v.hash).startsWith('$argon2'));
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const cheap = { memorySize: 64, iterations: 1, parallelism: 1 };

t.test('verifies the Argon2 hashes doveadm made (ARGON2ID and ARGON2I)', async (t) => {
  t.ok(vectors.some((v) => v.hash.startsWith('{ARGON2I}')));
  t.ok(vectors.some((v) => v.hash.startsWith('{ARGON2ID}')));
  // Each check costs a quarter of a second or more: every vector with its password, one wrong password per variant.
  const wrongDone = new Set<string>();
  for (const v of vectors) {
    t.same(await verifyArgon2(utf8(v.password), bare(v.hash)), { ok: true }, label(v));
    const variant = bare(v.hash).split('$')[1] ?? '';
    if (wrongDone.has(variant)) continue;
    wrongDone.add(variant);
    t.match(await verifyArgon2(utf8(wrongPassword(v.password)), bare(v.hash)), { ok: false, reason: 'mismatch' }, `wrong: ${label(v)}`);
  }
});

t.test('generates PHC strings in Dovecot\'s format', async (t) => {
  const hash = await generateArgon2('argon2id', utf8('pw'), cheap);
  t.match(hash, /^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  t.same(await verifyArgon2(utf8('pw'), hash), { ok: true });
  t.match(await verifyArgon2(utf8('pW'), hash), { ok: false, reason: 'mismatch' });
  const i = await generateArgon2('argon2i', utf8('pw'), cheap);
  t.match(i, /^\$argon2i\$/);
  t.same(await verifyArgon2(utf8('pw'), i), { ok: true });
  t.same(ARGON2_DEFAULTS, { memorySize: 65536, iterations: 3, parallelism: 1 }, 'doveadm pw defaults');
  t.ok(argon2Schemes['ARGON2ID']?.generate, 'ARGON2ID generates');
  await t.rejects(generateArgon2('argon2id', utf8(''), cheap), RangeError);
});

t.test('refuses broken or costly values with a reason, never throws', async (t) => {
  const hash = await generateArgon2('argon2id', utf8('pw'), cheap);
  t.match(await verifyArgon2(utf8('pw'), hash.replace('v=19', 'v=16')), { ok: false, reason: 'unsupported' });
  t.match(await verifyArgon2(utf8('pw'), hash.replace('$v=19', '')), { ok: false, reason: 'unsupported' }, 'no version is 1.0');
  t.match(await verifyArgon2(utf8('pw'), hash.replace('m=64', 'm=99999999')), { ok: false, reason: 'unsupported' });
  t.match(await verifyArgon2(utf8('pw'), hash.replace('t=1', 't=1000')), { ok: false, reason: 'unsupported' });
  t.match(await verifyArgon2(utf8('pw'), hash.replace('m=64', 'm=1')), { ok: false, reason: 'unsupported' }, 'hash-wasm refusal is caught');
  t.match(await verifyArgon2(utf8('pw'), hash.slice(0, 20)), { ok: false, reason: 'malformed-hash' });
  t.match(await verifyArgon2(utf8('pw'), hash + '!'), { ok: false, reason: 'malformed-hash' });
  t.match(await verifyArgon2(utf8(''), hash), { ok: false, reason: 'mismatch' }, 'empty password');
});
