import t from 'tap';
import { ConnectionTimeouts } from '../../src/smtp/timeouts.js';
import type { SmtpReply } from '../../src/smtp/replies.js';
import { ManualTimers } from '../helpers/smtp-timers.js';

function setup(options: { busy?: () => boolean; minBytes?: number } = {}) {
  const timers = new ManualTimers();
  const expired: SmtpReply[] = [];
  const clocks = new ConnectionTimeouts(
    { timers, idleTimeoutMs: 300_000, lineTimeoutMs: 60_000, dataWindowMs: 30_000, minDataBytesPerWindow: options.minBytes ?? 100 },
    (reply) => expired.push(reply),
    options.busy ?? (() => false),
  );
  return { timers, expired, clocks };
}

t.test('idle: runs while waiting, only a complete command stops it', async (t) => {
  const { timers, expired, clocks } = setup();
  t.same(timers.pending('idle'), [], 'nothing runs before the greeting');
  clocks.waitForCommand();
  t.same(timers.pending('idle'), [300_000]);
  clocks.received(3);
  t.same(timers.pending('idle'), [300_000], 'bytes of a partial line do not reset it');
  t.same(timers.pending('line'), [60_000], 'they start the line deadline');
  clocks.received(3);
  t.same(timers.pending('line'), [60_000], 'once');
  clocks.commandStarted();
  t.same([timers.pending('idle'), timers.pending('line')], [[], []], 'a complete line stops both');
  clocks.waitForCommand();
  t.equal(timers.fire('idle'), 1);
  t.same(expired.map((r) => `${r.code} ${r.enhanced}`), ['421 4.4.2']);
  t.equal(clocks.phase, 'closed');
  clocks.waitForCommand();
  t.same(timers.pending('idle'), [], 'nothing restarts once closed');
});

t.test('line deadline fires for a byte-a-minute client', async (t) => {
  const { timers, expired, clocks } = setup();
  clocks.waitForCommand();
  clocks.received(1);
  t.equal(timers.fire('line'), 1);
  t.equal(expired[0]?.text, 'Command line not completed in time, closing connection');
});

t.test('idle while a handler is pending is not idleness', async (t) => {
  let busy = true;
  const { timers, expired, clocks } = setup({ busy: () => busy });
  clocks.waitForCommand();
  timers.fire('idle');
  t.same(expired, []);
  t.same(timers.pending('idle'), [300_000], 're-armed');
  busy = false;
  timers.fire('idle');
  t.equal(expired.length, 1);
});

t.test('DATA: each window must bring the minimum; the end of data stops the clock', async (t) => {
  const { timers, expired, clocks } = setup({ minBytes: 100 });
  clocks.commandStarted();
  clocks.dataStarted();
  t.same(timers.pending('data'), [30_000]);
  t.same(timers.pending('idle'), []);
  clocks.received(150);
  timers.fire('data');
  t.same(expired, [], 'a fast window passes');
  t.same(timers.pending('data'), [30_000], 'the next window starts');
  clocks.received(99);
  timers.fire('data');
  t.equal(expired[0]?.text, 'Message data arriving too slowly, closing connection');

  const second = setup({ minBytes: 0 });
  second.clocks.dataStarted();
  second.timers.fire('data');
  t.equal(second.expired.length, 1, 'a stalled client is cut off even with no minimum rate');

  const third = setup();
  third.clocks.dataStarted();
  third.clocks.dataEnded();
  t.same(third.timers.pending('data'), [], 'storing the message: no clock');
  third.clocks.waitForCommand();
  t.same(third.timers.pending('idle'), [300_000]);
});
