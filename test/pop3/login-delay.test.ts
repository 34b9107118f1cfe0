import t from 'tap';
import { LoginDelayTracker } from '../../src/pop3/login-delay.ts';

t.test('a user waits the delay after a login; others do not', async (t) => {
  let now = 10_000;
  const tracker = new LoginDelayTracker(60, () => now);
  t.equal(tracker.remaining('alice'), 0);
  tracker.record('alice');
  t.equal(tracker.remaining('alice'), 60);
  t.equal(tracker.remaining('bob'), 0);
  now += 59_001;
  t.equal(tracker.remaining('alice'), 1, 'rounds up');
  now += 999;
  t.equal(tracker.remaining('alice'), 0);
});

t.test('off at 0; old entries are forgotten past 1024 users', async (t) => {
  const off = new LoginDelayTracker(0);
  off.record('alice');
  t.equal(off.remaining('alice'), 0);
  let now = 0;
  const tracker = new LoginDelayTracker(10, () => now);
  for (let i = 0; i < 1024; i++) tracker.record(`u${i}`);
  now = 20_000;
  tracker.record('fresh');
  t.equal(tracker.remaining('u1'), 0);
  t.equal(tracker.remaining('fresh'), 10);
});
