import t from 'tap';
import { capabilityLines } from '../../src/pop3/capabilities.ts';
import { COMMANDS } from '../../src/pop3/commands/index.ts';
import type { SessionFacts } from '../../src/pop3/command.ts';
import { DEFAULT_POP3_LIMITS, type Pop3SessionConfig } from '../../src/pop3/config.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';

const users = UserDatabase.fromEntries([{ name: 'alice', password: '{PLAIN}x' }]);
const config: Pop3SessionConfig = {
  hostname: 'h',
  greeting: 'g',
  implementation: 'maildird',
  isApopEnabled: false,
  isCramMd5Enabled: true,
  allowPlaintextAuth: false,
  isLoopbackSecure: true,
  isTraceEnabled: true,
  loginDelaySeconds: 0,
  isTlsConfigured: true,
  saslMechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
  limits: DEFAULT_POP3_LIMITS,
};
const facts: SessionFacts = {
  isTls: false,
  isLoopback: false,
  remoteAddress: '192.0.2.1',
  isUtf8: false,
  canStartTls: true,
  isPlaintextAllowed: false,
  apopChallenge: undefined,
};

t.test('the list is derived from the table plus the session-wide codes', async (t) => {
  const lines = capabilityLines(COMMANDS, { state: 'AUTHORIZATION', facts, config, users });
  t.ok(lines.includes('STLS'));
  t.notOk(lines.includes('USER'), 'no plaintext here');
  for (const fixed of ['TOP', 'UIDL', 'UTF8 USER', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'EXPIRE NEVER', 'IMPLEMENTATION maildird']) {
    t.ok(lines.includes(fixed), fixed);
  }
  t.notOk(lines.some((l) => l.startsWith('LOGIN-DELAY')));
  const later = capabilityLines(COMMANDS, {
    state: 'TRANSACTION',
    facts: { ...facts, isTls: true, canStartTls: false, isPlaintextAllowed: true },
    config: { ...config, loginDelaySeconds: 300 },
    users,
  });
  t.notOk(later.includes('STLS'));
  t.ok(later.includes('USER'));
  t.ok(later.includes('LOGIN-DELAY 300'));
  t.equal(new Set(later).size, later.length, 'no duplicates');
});
