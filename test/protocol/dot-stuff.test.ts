import t from 'tap';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DotStuffer, dotStuffMessage, createDotStuffTransform } from '../../src/protocol/dot-stuff.ts';

/** The rule stated plainly, line by line (RFC 1939 section 3), for input that ends with CRLF. */
function reference(wire: string): string {
  const lines = wire.split('\r\n').slice(0, -1);
  return lines.map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`).join('');
}

function stuffInChunks(input: Buffer, cuts: number[]): Buffer {
  const stuffer = new DotStuffer();
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(stuffer.push(input.subarray(from, cut)));
    from = cut;
  }
  out.push(stuffer.terminator());
  return Buffer.concat(out);
}

t.test('lines starting with a dot get one more', async (t) => {
  t.equal(dotStuffMessage(Buffer.from('a\r\n.b\r\n..c\r\n.\r\nd.e\r\n')).toString(), 'a\r\n..b\r\n...c\r\n..\r\nd.e\r\n.\r\n');
  t.equal(dotStuffMessage(Buffer.from('.first\r\n')).toString(), '..first\r\n.\r\n');
  t.equal(dotStuffMessage(Buffer.alloc(0)).toString(), '.\r\n', 'an empty message is just the terminator');
});

t.test('a chunk without a line-start dot passes through without a copy', async (t) => {
  const stuffer = new DotStuffer();
  const chunk = Buffer.from('Subject: x\r\n\r\nbody.\r\n');
  t.equal(stuffer.push(chunk), chunk);
  t.equal(stuffer.inputBytes, chunk.length);
});

t.test('a dot at a chunk edge is stuffed when the previous chunk ended a line', async (t) => {
  const stuffer = new DotStuffer();
  t.equal(stuffer.push(Buffer.from('a\r\n')).toString(), 'a\r\n');
  t.equal(stuffer.push(Buffer.from('.b\r\nc')).toString(), '..b\r\nc');
  t.equal(stuffer.push(Buffer.from('.d\r\n')).toString(), '.d\r\n', 'mid-line dot at a chunk start is left alone');
  t.equal(stuffer.push(Buffer.from('\n.x\r\n')).toString(), '\n..x\r\n');
});

t.test('the terminator adds a CRLF when the input did not end with one', async (t) => {
  const stuffer = new DotStuffer();
  stuffer.push(Buffer.from('no final line end'));
  t.notOk(stuffer.endsWithCrlf);
  t.equal(stuffer.terminator().toString(), '\r\n.\r\n');
  const split = new DotStuffer();
  split.push(Buffer.from('x\r'));
  split.push(Buffer.from('\n'));
  t.ok(split.endsWithCrlf, 'CR and LF in different chunks');
  t.equal(split.terminator().toString(), '.\r\n');
});

t.test('any split of random messages gives the same bytes as the whole-message rule', async (t) => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const alphabet = ['.', '.', 'a', '\r\n', '\r\n', ' ', '..'];
  for (let round = 0; round < 300; round++) {
    let s = '';
    const n = rand(40);
    for (let i = 0; i < n; i++) s += alphabet[rand(alphabet.length)];
    if (!s.endsWith('\r\n')) s += '\r\n';
    const input = Buffer.from(s);
    const expected = Buffer.concat([Buffer.from(reference(s)), Buffer.from('.\r\n')]).toString();
    const cuts: number[] = [];
    for (let at = rand(5) + 1; at < input.length; at += rand(5) + 1) cuts.push(at);
    t.equal(stuffInChunks(input, cuts).toString(), expected, JSON.stringify(s));
  }
});

t.test('the Transform form streams and ends with the terminator', async (t) => {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([Buffer.from('a\r\n.'), Buffer.from('b\r\n'), Buffer.from('.\r\n')]),
    createDotStuffTransform(),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(chunk);
    },
  );
  t.equal(Buffer.concat(out).toString(), 'a\r\n..b\r\n..\r\n.\r\n');
});
