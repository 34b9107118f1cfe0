import t from 'tap';
import { PassThrough } from 'node:stream';
import { LineReader, type LineEvent } from '../../src/protocol/line-reader.ts';

const text = (e: LineEvent | undefined): string =>
  e === undefined ? '<eof>' : e.kind === 'line' ? e.line.toString('latin1') : `<too-long ${e.length}>`;

async function drain(reader: LineReader): Promise<string[]> {
  const out: string[] = [];
  for (let e = await reader.next(); e !== undefined; e = await reader.next()) out.push(text(e));
  return out;
}

t.test('CRLF and bare LF lines; a CR inside a line is kept', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 255 });
  source.end('USER a\r\nPASS b\nX\rY\r\n\r\n');
  t.same(await drain(reader), ['USER a', 'PASS b', 'X\rY', '']);
});

t.test('lines split at every byte boundary come out whole', async (t) => {
  const input = Buffer.from('STAT\r\nLIST 1\r\nRETR 22\r\n');
  for (let cut = 1; cut < input.length; cut++) {
    const source = new PassThrough();
    const reader = new LineReader(source, { maxLineLength: 255 });
    source.write(input.subarray(0, cut));
    source.end(input.subarray(cut));
    t.same(await drain(reader), ['STAT', 'LIST 1', 'RETR 22'], `cut at ${cut}`);
  }
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 255 });
  for (const byte of input) source.write(Buffer.from([byte]));
  source.end();
  t.same(await drain(reader), ['STAT', 'LIST 1', 'RETR 22'], 'one byte per chunk');
});

t.test('the limit counts the CRLF (RFC 2449: 255 octets including CRLF)', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 10 });
  source.end('12345678\r\n123456789\r\n12345678\n1234567890123\r\nOK\r\n');
  t.same(await drain(reader), ['12345678', '<too-long 9>', '12345678', '<too-long 13>', 'OK']);
});

t.test('an over-long line is dropped up to its end without being buffered, in order', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 255 });
  const big = Buffer.alloc(64 * 1024, 0x41);
  source.write('NOOP\r\n');
  for (let i = 0; i < 32; i++) source.write(big); // 2 MiB, no LF
  source.write('\r');
  source.end('\nQUIT\r\n');
  const first = await reader.next();
  t.equal(text(first), 'NOOP');
  const second = await reader.next();
  t.same(second, { kind: 'too-long', length: 32 * big.length }, 'one event for the whole line');
  t.equal(text(await reader.next()), 'QUIT');
  t.equal(await reader.next(), undefined);
});

t.test('reading pauses while complete lines wait, and resumes when they are taken', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 255 });
  source.write('A\r\nB\r\nC\r\n');
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(source.isPaused(), 'paused with three lines buffered');
  t.ok(reader.hasBufferedLine);
  t.equal(text(await reader.next()), 'A');
  t.equal(text(await reader.next()), 'B');
  t.equal(text(await reader.next()), 'C');
  t.notOk(reader.hasBufferedLine);
  const pending = reader.next();
  t.notOk(source.isPaused(), 'resumed when a caller waits on an empty buffer');
  source.write('D\r\n');
  t.equal(text(await pending), 'D');
  await t.rejects(Promise.all([reader.next(), reader.next()]), /already pending/);
  source.end();
});

t.test('an unterminated last line is dropped at end of input', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 255 });
  source.end('QUIT\r\nhalf');
  t.same(await drain(reader), ['QUIT']);
  t.ok(reader.isDone);
});

t.test('onPartialLine reports when a started line is in progress', async (t) => {
  const source = new PassThrough();
  const seen: boolean[] = [];
  const reader = new LineReader(source, { maxLineLength: 255, onPartialLine: (p) => seen.push(p) });
  const next = reader.next();
  source.write('NO');
  await new Promise((resolve) => setImmediate(resolve));
  source.write('O');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(seen, [true], 'a second piece of the same line does not report again');
  source.write('P\r\nST');
  t.equal(text(await next), 'NOOP');
  t.same(seen, [true], 'a new partial line right after a complete one stays in progress');
  source.write('AT\r\n');
  t.equal(text(await reader.next()), 'STAT');
  t.same(seen, [true, false]);
  source.end();
});

t.test('detach drops buffered lines and partial input and wakes a waiter', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 255 });
  source.write('STLS\r\nUSER evil\r\nPASS x');
  t.equal(text(await reader.next()), 'STLS');
  t.equal(reader.detach(), 'USER evil'.length + 1 + 'PASS x'.length);
  t.equal(await reader.next(), undefined);
  t.equal(source.listenerCount('data'), 0, 'no longer reading the source');

  const idle = new PassThrough();
  const waiting = new LineReader(idle, { maxLineLength: 255 });
  const pending = waiting.next();
  waiting.detach();
  t.equal(await pending, undefined);
});

t.test('maxLineLength can be raised for SASL responses', async (t) => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineLength: 10 });
  t.equal(reader.maxLineLength, 10);
  reader.maxLineLength = 100;
  source.end(`${'x'.repeat(50)}\r\n`);
  t.same(await drain(reader), ['x'.repeat(50)]);
  t.throws(() => new LineReader(new PassThrough(), { maxLineLength: 2 }), RangeError);
});
