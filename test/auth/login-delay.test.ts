import t from 'tap';
import { LoginDelay } from '../../src/auth/login-delay.js';

function clock(start = 5_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

t.test('enforces the minimum time between logins of one user', async (t) => {
  const c = clock();
  const delay = new LoginDelay({ seconds: 900, now: c.now });
  t.equal(delay.capability(), 'LOGIN-DELAY 900');
  t.equal(delay.remainingSeconds('alice'), 0, 'first login');
  delay.recordLogin('alice');
  t.equal(delay.remainingSeconds('alice'), 900);
  t.equal(delay.remainingSeconds('bob'), 0, 'per user');
  c.advance(899_001);
  t.equal(delay.remainingSeconds('alice'), 1, 'rounds up');
  c.advance(999);
  t.equal(delay.remainingSeconds('alice'), 0);
  t.equal(delay.size, 0, 'expired entries dropped');
});

t.test('a refused attempt does not restart the wait', async (t) => {
  const c = clock();
  const delay = new LoginDelay({ seconds: 60, now: c.now });
  delay.recordLogin('alice');
  c.advance(30_000);
  t.equal(delay.remainingSeconds('alice'), 30);
  c.advance(10_000);
  t.equal(delay.remainingSeconds('alice'), 20, 'checking is not recording');
});

t.test('off at 0; bad values refused', async (t) => {
  const off = new LoginDelay({ seconds: 0 });
  off.recordLogin('alice');
  t.equal(off.remainingSeconds('alice'), 0);
  t.equal(off.capability(), undefined);
  t.equal(off.size, 0);
  t.throws(() => new LoginDelay({ seconds: -1 }), RangeError);
  t.throws(() => new LoginDelay({ seconds: 1.5 }), RangeError);
});

t.test('bounded memory', async (t) => {
  const c = clock();
  const delay = new LoginDelay({ seconds: 3600, now: c.now, maxEntries: 10 });
  for (let i = 0; i < 100; i++) {
    delay.recordLogin(`user${i}`);
    c.advance(1);
  }
  t.equal(delay.size, 10);
  t.ok(delay.remainingSeconds('user99') > 0);
  t.equal(delay.remainingSeconds('user0'), 0, 'evicted');
});
