import t from 'tap';
import { DEFAULT_THROTTLE_POLICY, LoginThrottle, failureDelayMs, throttleKeyForAddress } from '../../src/auth/throttle.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

t.test('the delay curve is a pure function', async (t) => {
  const p = DEFAULT_THROTTLE_POLICY;
  const curve = Array.from({ length: 9 }, (_, i) => failureDelayMs(i, p, p.maxIpDelayMs));
  t.same(curve, [0, 0, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  t.same(
    Array.from({ length: 5 }, (_, i) => failureDelayMs(i, p, p.maxUserDelayMs)),
    [0, 0, 1000, 2000, 2000],
    'per user: capped at 2 s',
  );
  t.equal(failureDelayMs(1e9, p, 15000), 15000, 'no overflow');
  t.equal(failureDelayMs(-1, p, 15000), 0);
  t.equal(failureDelayMs(Number.NaN, p, 15000), 0);
  t.equal(failureDelayMs(2, { baseDelayMs: 500, freeFailures: 0 }, 60000), 1000);
});

t.test('per address: grows with consecutive failures, success resets', async (t) => {
  const c = clock();
  const th = new LoginThrottle({ now: c.now });
  t.equal(th.attemptDelayMs('192.0.2.1'), 0);
  const owed = [1, 2, 3, 4, 5, 6, 7].map(() => th.recordFailure('192.0.2.1'));
  t.same(owed, [0, 1000, 2000, 4000, 8000, 15000, 15000]);
  t.equal(th.attemptDelayMs('192.0.2.1'), 15000);
  t.equal(th.attemptDelayMs('192.0.2.2'), 0, 'other addresses are not affected');
  th.recordSuccess('192.0.2.1');
  t.equal(th.attemptDelayMs('192.0.2.1'), 0);
  t.equal(th.recordFailure('192.0.2.1'), 0, 'starts over');
});

t.test('per user: capped low, so spraying from many addresses cannot lock the user out', async (t) => {
  const c = clock();
  const th = new LoginThrottle({ now: c.now });
  for (let i = 0; i < 50; i++) th.recordFailure(`198.51.100.${i}`, 'alice');
  t.equal(th.attemptDelayMs('203.0.113.9', 'alice'), 2000, 'the real user, from a clean address, waits 2 s at most');
  t.equal(th.attemptDelayMs('203.0.113.9', 'ALICE'), 2000, 'users counted without regard to case');
  t.equal(th.attemptDelayMs('203.0.113.9', 'bob'), 0);
  t.equal(th.attemptDelayMs('203.0.113.9'), 0);
  th.recordSuccess('203.0.113.9', 'alice');
  t.equal(th.attemptDelayMs('198.51.100.1', 'alice'), 0, 'success resets the user');
});

t.test('the larger of the address and user delays applies', async (t) => {
  const c = clock();
  const th = new LoginThrottle({ now: c.now });
  for (let i = 0; i < 5; i++) th.recordFailure('192.0.2.7', `user${i}`);
  t.equal(th.attemptDelayMs('192.0.2.7', 'user0'), 8000);
  t.equal(th.recordFailure('192.0.2.8', 'user0'), 1000, 'user0 has failed twice');
});

t.test('forgotten after a quiet period', async (t) => {
  const c = clock();
  const th = new LoginThrottle({ now: c.now, forgetAfterMs: 60_000 });
  th.recordFailure('192.0.2.1', 'alice');
  th.recordFailure('192.0.2.1', 'alice');
  t.equal(th.attemptDelayMs('192.0.2.1', 'alice'), 1000);
  c.advance(59_999);
  t.equal(th.attemptDelayMs('192.0.2.1', 'alice'), 1000, 'still remembered');
  c.advance(1);
  t.equal(th.attemptDelayMs('192.0.2.1', 'alice'), 0, 'forgotten');
  t.same(th.size, { addresses: 0, users: 0 }, 'and dropped');
  t.equal(th.recordFailure('192.0.2.1', 'alice'), 0, 'a fresh start');
});

t.test('memory stays bounded: the least recently failed go first', async (t) => {
  const c = clock();
  const th = new LoginThrottle({ now: c.now, maxEntries: 100 });
  for (let i = 0; i < 1000; i++) {
    th.recordFailure(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
    c.advance(1);
  }
  t.same(th.size, { addresses: 100, users: 100 });
  th.recordFailure('10.0.3.231'); // i = 999: refreshes the newest
  th.recordFailure('10.0.3.231');
  t.equal(th.attemptDelayMs('10.0.3.231'), 2000, 'recent records survive');
  t.equal(th.attemptDelayMs('10.0.0.0'), 0, 'the oldest were evicted');
});

t.test('addresses: IPv4-mapped IPv6 is IPv4, IPv6 counts per /64', async (t) => {
  t.equal(throttleKeyForAddress('192.0.2.1'), '192.0.2.1');
  t.equal(throttleKeyForAddress('::ffff:192.0.2.1'), '192.0.2.1');
  t.equal(throttleKeyForAddress('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(throttleKeyForAddress('2001:DB8:1:2::ffff'), '2001:db8:1:2::/64');
  t.equal(throttleKeyForAddress('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(throttleKeyForAddress('::1'), '0:0:0:0::/64');
  t.equal(throttleKeyForAddress('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(throttleKeyForAddress('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  t.equal(throttleKeyForAddress('not an address'), 'not an address');
  const c = clock();
  const th = new LoginThrottle({ now: c.now });
  th.recordFailure('2001:db8:1:2::1');
  th.recordFailure('2001:db8:1:2::2');
  t.equal(th.attemptDelayMs('2001:db8:1:2:ffff::9'), 1000, 'one /64, one budget');
  t.equal(th.attemptDelayMs('2001:db8:1:3::1'), 0);
});
