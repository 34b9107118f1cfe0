import t from 'tap';
import { createHmac } from 'node:crypto';
import {
  SASL_MECHANISMS,
  createSaslExchange,
  parseMechanismName,
  saslMechanisms,
  verifySaslCredentials,
} from '../../../src/auth/sasl/mechanisms.js';
import { UserDatabase } from '../../../src/auth/user-db.js';
import type { SaslStep } from '../../../src/auth/sasl/exchange.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const dummyHash = '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE';

t.test('what to offer', async (t) => {
  const offer = (secure: boolean, allowPlaintext: boolean, hasSharedSecrets: boolean, cramMd5 = true) =>
    saslMechanisms({ secure, allowPlaintext, hasSharedSecrets, cramMd5 });
  t.same(offer(true, false, true), ['PLAIN', 'LOGIN', 'CRAM-MD5']);
  t.same(offer(true, false, false), ['PLAIN', 'LOGIN']);
  t.same(offer(false, false, true), ['CRAM-MD5'], 'no plaintext passwords in the clear');
  t.same(offer(false, false, false), []);
  t.same(offer(false, true, false), ['PLAIN', 'LOGIN'], 'unless the operator allows them');
  t.same(offer(true, false, true, false), ['PLAIN', 'LOGIN'], 'CRAM-MD5 only when the operator turned it on');
  t.same(offer(false, false, true, false), []);
  t.same(SASL_MECHANISMS, ['PLAIN', 'LOGIN', 'CRAM-MD5']);
});

t.test('mechanism names ignore case', async (t) => {
  t.equal(parseMechanismName('plain'), 'PLAIN');
  t.equal(parseMechanismName('Cram-Md5'), 'CRAM-MD5');
  t.equal(parseMechanismName('DIGEST-MD5'), undefined);
  t.equal(parseMechanismName(''), undefined);
});

t.test('whole exchanges checked through a real UserDatabase', async (t) => {
  const users = UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}wonder land' },
      { name: 'bob', password: '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE' }, // "secret"
    ],
    { dummyHash },
  );
  const options = { hostname: 'mail.example.org' };
  const finish = async (step: SaslStep) => (step.kind === 'done' ? (await verifySaslCredentials(users, step.credentials))?.name : step.kind);

  t.equal(await finish(createSaslExchange('PLAIN', options).start(b64('\0alice\0wonder land'))), 'alice');
  t.equal(await finish(createSaslExchange('PLAIN', options).start(b64('\0bob\0secret'))), 'bob');
  t.equal(await finish(createSaslExchange('PLAIN', options).start(b64('\0bob\0wrong'))), undefined);
  t.equal(await finish(createSaslExchange('PLAIN', options).start(b64('\0nobody\0secret'))), undefined);

  const login = createSaslExchange('LOGIN', options);
  login.start();
  login.next(b64('bob'));
  t.equal(await finish(login.next(b64('secret'))), 'bob');

  const cram = createSaslExchange('CRAM-MD5', options);
  const first = cram.start();
  t.equal(first.kind, 'challenge');
  const challenge = first.kind === 'challenge' ? Buffer.from(first.challenge, 'base64').toString() : '';
  t.match(challenge, /^<\d+\.\d+@mail\.example\.org>$/);
  const digest = createHmac('md5', 'wonder land').update(challenge).digest('hex');
  t.equal(await finish(cram.next(b64(`alice ${digest}`))), 'alice');

  const cramBob = createSaslExchange('CRAM-MD5', options);
  const c2 = cramBob.start();
  const ch2 = c2.kind === 'challenge' ? Buffer.from(c2.challenge, 'base64').toString() : '';
  t.equal(await finish(cramBob.next(b64(`bob ${createHmac('md5', 'secret').update(ch2).digest('hex')}`))), undefined, 'hashed password: no CRAM-MD5');
  t.match(users.stats(), { accepted: 4 });
});
