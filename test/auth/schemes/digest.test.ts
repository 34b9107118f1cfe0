import t from 'tap';
import { createHash } from 'node:crypto';
import { digestSchemes } from '../../../src/auth/schemes/digest.js';
import { loadVectors, label, wrongPassword } from '../../helpers/auth-vectors.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** Decode as the tool wrote it: PLAIN-MD5 and .HEX are hex, everything else base64. */
function raw(scheme: string, value: string): Buffer {
  return scheme === 'PLAIN-MD5' || scheme.endsWith('.HEX') ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
}

t.test('verifies every digest the real tools made (doveadm pw, htpasswd -s)', async (t) => {
  let count = 0;
  for (const v of loadVectors()) {
    const m = /^\{([A-Z0-9-]+)(\.[A-Z0-9]+)?\}(.*)$/.exec(v.hash);
    const scheme = m?.[1] === undefined ? undefined : digestSchemes[m[1]];
    if (m === null || scheme === undefined) continue;
    count++;
    const bytes = raw(m[1] + (m[2] ?? ''), m[3] ?? '');
    t.same(scheme.verifyRaw(utf8(v.password), bytes), { ok: true }, label(v));
    t.match(scheme.verifyRaw(utf8(wrongPassword(v.password)), bytes), { ok: false, reason: 'mismatch' });
  }
  t.ok(count >= 15, `${count} vectors`);
});

t.test('salted digests: salt is what follows the digest', async (t) => {
  const ssha256 = digestSchemes['SSHA256'];
  t.ok(ssha256);
  if (ssha256 === undefined) return;
  const salt = Buffer.from('0123456789');
  const stored = Buffer.concat([createHash('sha256').update('pw').update(salt).digest(), salt]);
  t.same(ssha256.verifyRaw(utf8('pw'), stored), { ok: true }, 'a 10-byte salt works too');
  t.match(ssha256.verifyRaw(utf8('pw'), stored.subarray(0, 32)), { ok: false, reason: 'malformed-hash' }, 'no salt');
  const made = ssha256.generateRaw?.(utf8('pw')) ?? Buffer.alloc(0);
  t.equal(made.length, 40, '32-byte digest and an 8-byte salt');
  t.same(ssha256.verifyRaw(utf8('pw'), made), { ok: true });
});

t.test('each scheme knows its digest length and default encoding', async (t) => {
  t.match(digestSchemes['SHA512'], { rawLength: 64, defaultEncoding: 'base64' });
  t.match(digestSchemes['SHA'], { rawLength: 20, defaultEncoding: 'base64' });
  t.match(digestSchemes['PLAIN-MD5'], { rawLength: 16, defaultEncoding: 'hex' });
  t.match(digestSchemes['LDAP-MD5'], { rawLength: 16, defaultEncoding: 'base64' });
  t.equal(digestSchemes['SSHA512']?.rawLength, undefined, 'salted: any length over the digest');
});
