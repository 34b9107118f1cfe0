import t from 'tap';
import { ClusterThrottle } from '../../../src/cli/cluster/cluster-throttle.js';
import type { ThrottleEvent } from '../../../src/cli/cluster/messages.js';

t.test('failures seen by one worker cost the same delays in another', async (t) => {
  let now = 1_000_000;
  const clock = { now: () => now };
  const wire: ThrottleEvent[] = [];
  const one = new ClusterThrottle((e) => wire.push(e), clock);
  const two = new ClusterThrottle(() => t.fail('a remote event is never published again'), clock);
  one.recordFailure('192.0.2.1', 'alice');
  one.recordFailure('192.0.2.1', 'alice');
  t.same(wire, [
    { maildird: 'throttle', result: 'failure', address: '192.0.2.1', user: 'alice' },
    { maildird: 'throttle', result: 'failure', address: '192.0.2.1', user: 'alice' },
  ]);
  t.equal(two.attemptDelayMs('192.0.2.1', 'alice'), 0, 'nothing arrived yet');
  for (const event of wire.splice(0)) two.applyRemote(event);
  t.equal(two.attemptDelayMs('192.0.2.1', 'alice'), one.attemptDelayMs('192.0.2.1', 'alice'));
  t.ok(two.attemptDelayMs('192.0.2.1') > 0, 'the address owes a delay in the other worker');
  one.recordSuccess('192.0.2.1', 'alice');
  for (const event of wire.splice(0)) two.applyRemote(event);
  t.equal(two.attemptDelayMs('192.0.2.1', 'alice'), 0, 'a success clears both');
  now += 1;
});
