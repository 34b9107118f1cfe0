import t from 'tap';
import {
  checkPassword,
  generatableSchemes,
  hashPassword,
  schemeName,
  sharedSecret,
  splitStoredPassword,
  verifyPassword,
} from '../../src/auth/password.js';
import { ConfigError } from '../../src/errors.js';
import { label, loadVectors, wrongPassword } from '../helpers/auth-vectors.js';

t.test('every vector made by doveadm, mkpasswd, htpasswd and libxcrypt verifies as stored', async (t) => {
  const vectors = loadVectors();
  t.ok(vectors.length >= 90);
  // Argon2 at 64 MiB costs a quarter of a second or more per check: schemes/argon2.test.ts
  // checks every Argon2 vector; here one of each variant goes through the {SCHEME} dispatch.
  const argonSeen = new Set<string>();
  for (const v of vectors) {
    const argon = /^\{(ARGON2ID|ARGON2I)\}/.exec(v.hash)?.[1];
    if (argon !== undefined) {
      if (argonSeen.has(argon)) continue;
      argonSeen.add(argon);
    }
    if (v.expect === 'unsupported') {
      t.match(await checkPassword(v.hash, v.password), { ok: false, reason: 'unsupported' }, label(v));
      continue;
    }
    t.equal(await verifyPassword(v.hash, v.password), true, label(v));
    t.match(await checkPassword(v.hash, wrongPassword(v.password)), { ok: false, reason: 'mismatch' }, `wrong: ${label(v)}`);
  }
});

t.test('a value without {SCHEME} is read as Dovecot passwd-file reads it: CRYPT, or MD5-CRYPT for $1$', async (t) => {
  t.same(splitStoredPassword('$6$abc$def'), { scheme: 'CRYPT', value: '$6$abc$def', explicit: false });
  t.same(splitStoredPassword('$1$abc$def'), { scheme: 'MD5-CRYPT', value: '$1$abc$def', explicit: false });
  t.same(splitStoredPassword('{SSHA256}xyz'), { scheme: 'SSHA256', value: 'xyz', explicit: true });
  t.same(splitStoredPassword('{no end'), { scheme: 'CRYPT', value: '{no end', explicit: false });
  t.same(splitStoredPassword('plain', 'PLAIN'), { scheme: 'PLAIN', value: 'plain', explicit: false });
  t.ok(await verifyPassword('secret', 'secret', { defaultScheme: 'PLAIN' }), 'a configured default scheme');
  t.match(await checkPassword('secret', 'secret'), { ok: false, reason: 'malformed-hash' }, 'not a crypt value');
});

t.test('scheme names ignore case and take Dovecot encoding suffixes', async (t) => {
  t.ok(await verifyPassword('{plain}secret', 'secret'));
  t.ok(await verifyPassword('{sha256.hex}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b', 'secret'));
  t.ok(await verifyPassword('{SHA256}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b', 'secret'), 'hex guessed by length');
  t.ok(await verifyPassword('{PLAIN-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==', 'secret'), 'base64 where hex is the default');
  t.ok(await verifyPassword('{PLAIN.HEX}736563726574', 'secret'));
  t.match(await checkPassword('{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Uno', 'secret'), { ok: false, reason: 'malformed-hash' }, 'digest length');
  t.match(await checkPassword('{SHA256.HEX}zz', 'secret'), { ok: false, reason: 'malformed-hash' });
  t.match(await checkPassword('{SSHA256}!!!', 'secret'), { ok: false, reason: 'malformed-hash' });
});

t.test('unknown schemes and empty values fail with a reason, never a throw', async (t) => {
  t.same(await checkPassword('{SCRAM-SHA-256}abc', 'x'), {
    ok: false,
    reason: 'unknown-scheme',
    detail: 'unknown password scheme {SCRAM-SHA-256}',
  });
  t.match(await checkPassword('{SHA256.ROT13}abc', 'x'), { reason: 'unknown-scheme' });
  t.match(await checkPassword('', ''), { ok: false, reason: 'no-password' });
  t.match(await checkPassword('{PLAIN}', ''), { ok: false, reason: 'no-password' }, 'an empty PLAIN never logs in');
  t.equal(await verifyPassword('{ARGON2ID}garbage', 'x'), false);
});

t.test('hashPassword makes ARGON2ID by default and every generatable scheme round-trips', async (t) => {
  const argon = await hashPassword('n3w pässword');
  t.match(argon, /^\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=3,p=1\$/);
  t.ok(await verifyPassword(argon, 'n3w pässword'));
  for (const scheme of generatableSchemes().filter((s) => !s.startsWith('ARGON2'))) {
    const stored = await hashPassword('pw:with colon', scheme === 'PLAIN' || scheme.startsWith('CLEAR') ? `${scheme}.B64` : scheme);
    t.ok(await verifyPassword(stored, 'pw:with colon'), `${scheme}: ${stored}`);
    t.notOk(await verifyPassword(stored, 'pw:with colom'), `${scheme} wrong`);
  }
  t.equal(await hashPassword('secret', 'plain'), '{PLAIN}secret');
  t.equal(await hashPassword('secret', 'SHA256.HEX'), '{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b');
  t.equal(await hashPassword('sec:ret', 'PLAIN.B64'), '{PLAIN.B64}c2VjOnJldA==');
  await t.rejects(hashPassword('sec:ret', 'PLAIN'), ConfigError, 'a colon cannot sit in a PLAIN field');
  await t.rejects(hashPassword('x', 'NOPE'), ConfigError);
  await t.rejects(hashPassword('x', 'DES-CRYPT'), ConfigError);
});

t.test('sharedSecret only for the PLAIN family', async (t) => {
  t.same(sharedSecret('{PLAIN}secret'), Buffer.from('secret'));
  t.same(sharedSecret('{CLEARTEXT}secret'), Buffer.from('secret'));
  t.same(sharedSecret('{PLAIN.B64}c2VjOnJldA=='), Buffer.from('sec:ret'));
  t.same(sharedSecret('secret', { defaultScheme: 'PLAIN' }), Buffer.from('secret'));
  t.equal(sharedSecret('{PLAIN}'), undefined, 'empty');
  t.equal(sharedSecret('{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols='), undefined);
  t.equal(sharedSecret('$6$abc$def'), undefined);
  t.equal(sharedSecret('{PLAIN.B64}!!'), undefined);
});

t.test('schemeName', async (t) => {
  t.equal(schemeName('{ssha256.b64}x'), 'SSHA256');
  t.equal(schemeName('$6$x$y'), 'CRYPT');
  t.equal(schemeName('{WHAT}x'), undefined);
});
