import t from 'tap';
import { Writable } from 'node:stream';
import { ReplyWriter } from '../../src/protocol/reply-writer.ts';
import { ManualTimers } from '../helpers/pop3-timers.ts';

/** A real Writable that records each call the stream machinery makes into it. */
function recordingSink(options: { highWaterMark?: number; hold?: boolean } = {}) {
  const calls: string[][] = [];
  const held: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    writev(chunks, callback) {
      calls.push(chunks.map((c) => (c.chunk as Buffer).toString()));
      if (options.hold) held.push(() => callback());
      else callback();
    },
  });
  return { sink, calls, release: () => held.splice(0).forEach((f) => f()) };
}

t.test('replies written between flushes reach the sink in one writev', async (t) => {
  const { sink, calls } = recordingSink();
  const writer = new ReplyWriter(sink);
  writer.write('+OK 1\r\n');
  writer.write('+OK 2\r\n');
  writer.write(Buffer.from('+OK 3\r\n'));
  t.same(calls, [], 'nothing leaves before the flush');
  writer.flush();
  t.same(calls, [['+OK 1\r\n', '+OK 2\r\n', '+OK 3\r\n']]);
  writer.flush();
  t.equal(calls.length, 1, 'a second flush with nothing queued writes nothing');
  t.equal(writer.bytesWritten, 21);
});

t.test('a batch over the high-water mark is flushed and needsDrain asks the caller to wait', async (t) => {
  const { sink, calls, release } = recordingSink({ hold: true });
  const writer = new ReplyWriter(sink, { highWaterMark: 10 });
  writer.write('12345');
  t.notOk(writer.needsDrain);
  writer.write('67890ab');
  t.equal(calls.length, 1, 'flushed once the mark was passed');
  t.ok(writer.needsDrain);
  const drained = writer.drain();
  release();
  t.equal(await drained, 'drained');
  t.notOk(writer.needsDrain);
});

t.test('drain reports a closed sink and a client that stopped reading', async (t) => {
  const closing = recordingSink({ hold: true, highWaterMark: 4 });
  const writer = new ReplyWriter(closing.sink, { highWaterMark: 4 });
  writer.write('123456');
  const result = writer.drain();
  closing.sink.destroy();
  t.equal(await result, 'closed');
  writer.write('more');
  t.equal(writer.bytesWritten, 6, 'writes after close are dropped');

  const timers = new ManualTimers();
  const stuck = recordingSink({ hold: true, highWaterMark: 4 });
  const slow = new ReplyWriter(stuck.sink, { highWaterMark: 4, drainTimeoutMs: 1000, timers });
  slow.write('123456');
  const waiting = slow.drain();
  await timers.waitFor('drain');
  timers.fire('drain');
  t.equal(await waiting, 'timeout');
});

t.test('writeAndWait resolves after everything before it was written', async (t) => {
  const { sink, calls, release } = recordingSink({ hold: true });
  const writer = new ReplyWriter(sink);
  writer.write('a\r\n');
  let done = false;
  const waiting = writer.writeAndWait('+OK Begin TLS\r\n').then((ok) => {
    done = true;
    return ok;
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(done, 'still held by the sink');
  release();
  await new Promise((resolve) => setImmediate(resolve));
  release();
  t.equal(await waiting, true);
  t.same(calls.flat(), ['a\r\n', '+OK Begin TLS\r\n']);
});
