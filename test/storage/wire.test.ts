import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  wireSize,
  WireSizeCounter,
  WireEncoder,
  toWireBuffer,
  toWire,
  toWireChunks,
  TopCutter,
  topOfMessage,
  topOfMessageBuffer,
  StoredDecoder,
  toStoredBuffer,
  toStored,
  toMultilineBuffer,
} from '../../src/storage/wire.js';

const fixtureDir = new URL('../../fixtures/messages/', import.meta.url);
const fixtures = readdirSync(fixtureDir)
  .filter((name) => name.endsWith('.eml'))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(new URL(name, fixtureDir)) }));

/*
 * Oracles: the DESIGN.md rules written the most obvious way, byte by byte.
 * The code under test must agree with them on every input.
 */
function oracleWire(stored: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < stored.length; i++) {
    const b = stored[i]!;
    if (b === 0x0a && (i === 0 || stored[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(b);
  }
  if (stored.length > 0 && stored[stored.length - 1] !== 0x0a) out.push(0x0d, 0x0a);
  return Buffer.from(out);
}

function oracleStored(input: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === 0x0d && input[i + 1] === 0x0a) continue;
    out.push(b);
  }
  return Buffer.from(out);
}

/** RFC 1939 TOP over wire lines: header lines up to the first empty line, it, then n body lines. */
function oracleTop(stored: Buffer, n: number): Buffer {
  const wire = oracleWire(stored).toString('latin1');
  if (wire === '') return Buffer.alloc(0);
  const lines = wire.split('\r\n');
  lines.pop(); // the wire form always ends in CRLF: the last element is ''
  const blank = lines.indexOf('');
  const kept = blank === -1 ? lines : lines.slice(0, blank + 1 + n);
  return Buffer.from(kept.map((line) => `${line}\r\n`).join(''), 'latin1');
}

/** Every way to cut `buf` into two chunks, plus one-byte chunks. */
function* splits(buf: Buffer): Generator<{ label: string; chunks: Buffer[] }> {
  for (let at = 0; at <= buf.length; at++) {
    yield { label: `split at ${at}`, chunks: [buf.subarray(0, at), buf.subarray(at)] };
  }
  yield { label: 'one-byte chunks', chunks: [...buf].map((b) => Buffer.from([b])) };
}

async function* iterate(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

const tiny: Array<[string, string, number]> = [
  // stored, wire, wire size
  ['', '', 0],
  ['\n', '\r\n', 2],
  ['a', 'a\r\n', 3],
  ['\r', '\r\r\n', 3],
  ['\r\n', '\r\n', 2],
  ['a\r', 'a\r\r\n', 4],
  ['\n\n', '\r\n\r\n', 4],
  ['.\n', '.\r\n', 3],
  ['a\rb\n', 'a\rb\r\n', 5],
  ['\r\r\n', '\r\r\n', 3],
  ['x\ny', 'x\r\ny\r\n', 6],
];

t.test('the fixture corpus covers what DESIGN.md asks for', async (t) => {
  const names = fixtures.map((f) => f.name);
  for (const name of [
    'lf-plain.eml',
    'crlf-stored.eml',
    'mixed-line-ends.eml',
    'lone-cr.eml',
    'no-final-newline.eml',
    'dot-lines.eml',
    'utf8-8bit.eml',
    'base64-attachment.eml',
    'empty-body.eml',
    'header-only.eml',
  ]) {
    t.ok(names.includes(name), name);
  }
  const get = (name: string) => fixtures.find((f) => f.name === name)!.bytes;
  t.notOk(get('lf-plain.eml').includes('\r'), 'lf-plain has no CR');
  t.equal(get('crlf-stored.eml').toString('latin1').split('\n').length - 1, get('crlf-stored.eml').toString('latin1').split('\r\n').length - 1, 'every LF in crlf-stored follows a CR');
  t.ok(get('lone-cr.eml').includes('\r') && !get('lone-cr.eml').includes('\r\n'), 'lone-cr has lone CRs only');
  t.not(get('no-final-newline.eml').at(-1), 0x0a, 'no-final-newline ends without LF');
  t.ok(get('dot-lines.eml').includes('\n.\n'), 'a line that is only a dot');
  t.ok(get('utf8-8bit.eml').some((b) => b >= 0x80), '8-bit bytes');
  t.notOk(get('header-only.eml').includes('\n\n'), 'header-only has no blank line');
  t.ok(get('empty-body.eml').toString().endsWith('\n\n'), 'empty-body ends at the blank line');
});

t.test('wireSize and toWireBuffer on hand-written cases', async (t) => {
  for (const [stored, wire, size] of tiny) {
    const buf = Buffer.from(stored, 'latin1');
    t.equal(wireSize(buf), size, `wireSize ${JSON.stringify(stored)}`);
    t.equal(toWireBuffer(buf).toString('latin1'), wire, `wire ${JSON.stringify(stored)}`);
  }
});

t.test('every fixture: wireSize equals the bytes toWireBuffer produces, which match the oracle', async (t) => {
  for (const { name, bytes } of fixtures) {
    const wire = toWireBuffer(bytes);
    t.same(wire, oracleWire(bytes), `${name} wire bytes`);
    t.equal(wireSize(bytes), wire.length, `${name} wire size`);
    t.ok(wire.length >= bytes.length, `${name} never shrinks`);
  }
  const crlf = fixtures.find((f) => f.name === 'crlf-stored.eml')!.bytes;
  t.equal(toWireBuffer(crlf), crlf, 'a CRLF-stored file is its own wire form, no copy');
});

t.test('every fixture, split at every chunk boundary: streamed wire bytes are the same', async (t) => {
  for (const { name, bytes } of fixtures) {
    const expected = oracleWire(bytes);
    let failures = 0;
    for (const { label, chunks } of splits(bytes)) {
      const encoder = new WireEncoder();
      const counter = new WireSizeCounter();
      const parts = chunks.map((c) => {
        counter.update(c);
        return encoder.encode(c);
      });
      parts.push(encoder.end());
      const got = Buffer.concat(parts);
      if (!got.equals(expected) || encoder.bytesOut !== expected.length || counter.wireSize !== expected.length) {
        failures++;
        t.fail(`${name} ${label}`);
      }
      if (counter.storedSize !== bytes.length) t.fail(`${name} ${label} stored size`);
    }
    t.equal(failures, 0, `${name}: all ${bytes.length + 2} splits agree`);
  }
});

t.test('the toWire Transform and toWireChunks give the same bytes and count them', async (t) => {
  for (const { name, bytes } of fixtures) {
    const expected = oracleWire(bytes);
    const transform = toWire();
    const parts: Buffer[] = [];
    transform.on('data', (c: Buffer) => parts.push(c));
    // 7-byte chunks put chunk edges inside CRLF pairs of the CRLF fixtures.
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
    await pipeline(Readable.from(chunks, { objectMode: false }), transform);
    t.same(Buffer.concat(parts), expected, `${name} Transform`);
    t.equal(transform.bytesOut, wireSize(bytes), `${name} bytesOut = wireSize`);
    t.equal(transform.bytesIn, bytes.length, `${name} bytesIn`);
    t.same(await collect(toWireChunks(iterate(chunks))), expected, `${name} toWireChunks`);
  }
  t.same(await collect(toWireChunks(iterate([]))), Buffer.alloc(0), 'empty source, empty wire form');
});

t.test('a CR ending one chunk and an LF starting the next are one CRLF', async (t) => {
  const encoder = new WireEncoder();
  const a = encoder.encode(Buffer.from('line one\r'));
  const b = encoder.encode(Buffer.from('\nline two\n'));
  const c = encoder.end();
  t.equal(Buffer.concat([a, b, c]).toString(), 'line one\r\nline two\r\n');
  const lone = new WireEncoder();
  const d = lone.encode(Buffer.from('x\r'));
  const e = lone.encode(Buffer.from('y'));
  t.equal(Buffer.concat([d, e, lone.end()]).toString(), 'x\ry\r\n', 'CR then a non-LF stays a lone CR');
});

t.test('Uint8Array views (not Buffers) with an offset are read correctly', async (t) => {
  const backing = new Uint8Array(Buffer.from('XXXXa\nb\r\nc'));
  const view = backing.subarray(4);
  t.equal(wireSize(view), 9, '6 bytes, one bare LF, final CRLF');
  t.equal(toWireBuffer(view).toString(), 'a\r\nb\r\nc\r\n');
  t.equal(toStoredBuffer(view).toString(), 'a\nb\nc');
});

t.test('toStored: hand-written cases and chunk edges', async (t) => {
  const cases: Array<[string[], string]> = [
    [['\r\n'], '\n'],
    [['\r'], '\r'],
    [['\r\r\n'], '\r\n'],
    [['a\rb'], 'a\rb'],
    [['\n'], '\n'],
    [['\r', '\n'], '\n'],
    [['\r', '\r', '\n'], '\r\n'],
    [['a\r', 'b'], 'a\rb'],
    [['a\r', ''], 'a\r'],
    [['a\r', '', '\nb'], 'a\nb'],
    [['x\r\ny\r', '\nz\r'], 'x\ny\nz\r'],
    [[], ''],
  ];
  for (const [chunks, expected] of cases) {
    const decoder = new StoredDecoder();
    const got = Buffer.concat([...chunks.map((c) => decoder.decode(Buffer.from(c))), decoder.end()]);
    t.equal(got.toString('latin1'), expected, JSON.stringify(chunks));
  }
});

t.test('toStored on every fixture and its wire form, split at every boundary', async (t) => {
  for (const { name, bytes } of fixtures) {
    for (const input of [bytes, oracleWire(bytes)]) {
      const expected = oracleStored(input);
      t.same(toStoredBuffer(input), expected, `${name} (${input === bytes ? 'stored' : 'wire'}) whole`);
      let failures = 0;
      for (const { label, chunks } of splits(input)) {
        const decoder = new StoredDecoder();
        const got = Buffer.concat([...chunks.map((c) => decoder.decode(c)), decoder.end()]);
        if (!got.equals(expected)) {
          failures++;
          t.fail(`${name} ${label}`);
        }
      }
      t.equal(failures, 0, `${name}: all splits agree`);
    }
  }
});

t.test('the ToStored Transform counts received, stored and wire bytes in one pass', async (t) => {
  for (const { name, bytes } of fixtures) {
    const input = oracleWire(bytes);
    const transform = toStored();
    const parts: Buffer[] = [];
    transform.on('data', (c: Buffer) => parts.push(c));
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += 5) chunks.push(input.subarray(i, i + 5));
    await pipeline(Readable.from(chunks, { objectMode: false }), transform);
    const stored = Buffer.concat(parts);
    t.same(stored, oracleStored(input), `${name} stored bytes`);
    t.equal(transform.receivedSize, input.length, `${name} received`);
    t.equal(transform.storedSize, stored.length, `${name} S=`);
    t.equal(transform.wireSize, wireSize(stored), `${name} W=`);
  }
  // A stored result that keeps a CR before an LF ("\r\r\n" -> "\r\n"): W= must see that LF as not bare.
  const transform = toStored();
  const parts: Buffer[] = [];
  transform.on('data', (c: Buffer) => parts.push(c));
  await pipeline(Readable.from([Buffer.from('a\r'), Buffer.from('\r'), Buffer.from('\nb\r')], { objectMode: false }), transform);
  t.equal(Buffer.concat(parts).toString(), 'a\r\nb\r');
  t.equal(transform.storedSize, 5);
  t.equal(transform.wireSize, 7, 'the kept CRLF counts 2, the final lone CR gets a CRLF');
});

t.test('toStored(toWire(x)) round-trips every fixture without a CR before an LF', async (t) => {
  let checked = 0;
  for (const { name, bytes } of fixtures) {
    if (bytes.includes('\r\n')) continue;
    const back = toStoredBuffer(toWireBuffer(bytes));
    const expected = bytes.length > 0 && bytes.at(-1) !== 0x0a ? Buffer.concat([bytes, Buffer.from('\n')]) : bytes;
    t.same(back, expected, `${name}${expected === bytes ? '' : ' (gains the final line end the wire form added)'}`);
    checked++;
  }
  t.ok(checked >= 8, `round-tripped ${checked} fixtures`);
});

t.test('TOP on hand-picked fixtures', async (t) => {
  const get = (name: string) => fixtures.find((f) => f.name === name)!.bytes;
  const plain = get('lf-plain.eml');
  const headerEnd = plain.indexOf('\n\n') + 2;
  const headerWire = toWireBuffer(plain.subarray(0, headerEnd));
  t.same(topOfMessageBuffer(plain, 0), headerWire, 'TOP 0: header and blank line');
  t.ok(topOfMessageBuffer(plain, 0).toString().endsWith('7bit\r\n\r\n'));
  t.equal(topOfMessageBuffer(plain, 1).toString(), `${headerWire.toString()}Hi Alice,\r\n`, 'TOP 1');
  t.equal(topOfMessageBuffer(plain, 2).toString(), `${headerWire.toString()}Hi Alice,\r\n\r\n`, 'TOP 2: an empty body line counts');
  t.same(topOfMessageBuffer(plain, 1000), toWireBuffer(plain), 'TOP many: the whole message');

  const headerOnly = get('header-only.eml');
  for (const n of [0, 1, 50]) {
    t.same(topOfMessageBuffer(headerOnly, n), toWireBuffer(headerOnly), `header-only TOP ${n}: all header, no invented blank line`);
  }
  const empty = get('empty-body.eml');
  for (const n of [0, 1, 50]) t.same(topOfMessageBuffer(empty, n), toWireBuffer(empty), `empty-body TOP ${n}`);

  const noFinal = get('no-final-newline.eml');
  t.ok(topOfMessageBuffer(noFinal, 10).toString().endsWith('This is the last line\r\n'), 'the added final CRLF');
  t.ok(topOfMessageBuffer(noFinal, 1).toString().endsWith('last line end.\r\n'), 'cut before the unterminated line');

  const crlf = get('crlf-stored.eml');
  t.ok(topOfMessageBuffer(crlf, 0).toString().endsWith('quoted-printable\r\n\r\n'), 'CRLF blank line ends the header');
  const mixed = get('mixed-line-ends.eml');
  t.ok(topOfMessageBuffer(mixed, 0).toString().endsWith('<mixed.1@example.com>\r\n\r\n'), 'bare-LF blank line after a CRLF line');

  t.equal(topOfMessageBuffer(Buffer.from('\nbody\nmore\n'), 1).toString(), '\r\nbody\r\n', 'empty header');
  t.equal(topOfMessageBuffer(Buffer.from('\r\nbody\n'), 0).toString(), '\r\n', 'empty header, CRLF blank line');
  t.equal(topOfMessageBuffer(Buffer.from('A: b\n\r \nbody\n'), 0).toString(), 'A: b\r\n\r \r\nbody\r\n', 'a line holding CR and a space is not blank');
  t.equal(topOfMessageBuffer(Buffer.from('A: \r\nB: c\n\nx\n'), 0).toString(), 'A: \r\nB: c\r\n\r\n', 'a line ending in space CR LF is not blank');
  t.equal(topOfMessageBuffer(Buffer.from('A: b\n\r\r\nx\n'), 0).toString(), 'A: b\r\n\r\r\nx\r\n', 'CR CR LF is a line holding a lone CR, not a blank line');
  t.equal(topOfMessageBuffer(Buffer.alloc(0), 3).length, 0, 'empty file');
  t.throws(() => new TopCutter(-1), RangeError);
  t.throws(() => new TopCutter(1.5), RangeError);
});

t.test('TOP on every fixture, 0 to many lines, whole and at every chunk split', async (t) => {
  for (const { name, bytes } of fixtures) {
    for (const n of [0, 1, 2, 3, 7, 1000]) {
      const expected = oracleTop(bytes, n);
      t.same(topOfMessageBuffer(bytes, n), expected, `${name} TOP ${n}`);
      let failures = 0;
      for (const { label, chunks } of splits(bytes)) {
        const got = await collect(topOfMessage(iterate(chunks), n));
        if (!got.equals(expected)) {
          failures++;
          t.fail(`${name} TOP ${n} ${label}`);
        }
      }
      if (failures > 0) t.fail(`${name} TOP ${n}: ${failures} splits disagree`);
    }
  }
});

t.test('TOP stops reading the source as soon as the last line is out', async (t) => {
  let pulled = 0;
  let finished = false;
  async function* source(): AsyncGenerator<Buffer> {
    try {
      yield Buffer.from('Subject: big\n\nline 1\nline 2\n');
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield Buffer.from(`attachment line ${i}\n`);
      }
    } finally {
      finished = true;
    }
  }
  const out = await collect(topOfMessage(source(), 2));
  t.equal(out.toString(), 'Subject: big\r\n\r\nline 1\r\nline 2\r\n');
  t.equal(pulled, 0, 'no chunk after the cut was read');
  t.ok(finished, 'the source was closed (return() called)');

  // With a real stream: it is destroyed, not drained.
  const big = Buffer.concat([Buffer.from('Subject: big\n\nfirst\n'), Buffer.alloc(4 << 20, 'x\n')]);
  const stream = Readable.from(
    (function* () {
      for (let i = 0; i < big.length; i += 16384) yield big.subarray(i, i + 16384);
    })(),
    { objectMode: false },
  );
  let read = 0;
  stream.on('data', (c: Buffer) => (read += c.length));
  const top = await collect(topOfMessage(stream, 1));
  t.equal(top.toString(), 'Subject: big\r\n\r\nfirst\r\n');
  t.ok(stream.destroyed, 'the file stream is destroyed');
  t.ok(read < big.length / 4, `read ${read} of ${big.length} bytes`);
});

t.test('large inputs: indexOf loops give the same bytes as the oracle', async (t) => {
  // Lines of varying length with lone CRs and a few CRLFs, about 300 KB.
  const parts: string[] = [];
  for (let i = 0; i < 20000; i++) parts.push(`line ${i}${i % 97 === 0 ? '\r' : ''}${'.'.repeat(i % 13)}${i % 31 === 0 ? '\r\n' : '\n'}`);
  const big = Buffer.from(parts.join(''));
  t.same(toWireBuffer(big), oracleWire(big));
  t.equal(wireSize(big), oracleWire(big).length);
  t.same(toStoredBuffer(oracleWire(big)), oracleStored(oracleWire(big)));
  const chunks: Buffer[] = [];
  for (let i = 0; i < big.length; i += 4093) chunks.push(big.subarray(i, i + 4093));
  t.same(await collect(toWireChunks(iterate(chunks))), oracleWire(big), 'prime-sized chunks');
  t.same(await collect(topOfMessage(iterate(chunks), 5000)), oracleTop(big, 5000));
});

/** The multi-line body the byte-by-byte way: wire form, a "." added before every line starting with ".", then ".CRLF". */
function oracleFramed(stored: Buffer): Buffer {
  const wire = oracleWire(stored);
  const out: number[] = [];
  for (let i = 0; i < wire.length; i++) {
    if (wire[i] === 0x2e && (i === 0 || wire[i - 1] === 0x0a)) out.push(0x2e);
    out.push(wire[i]!);
  }
  out.push(0x2e, 0x0d, 0x0a);
  return Buffer.from(out);
}

t.test('toMultilineBuffer: wire form, dot-stuffed and terminated, in one buffer', async (t) => {
  const cases = ['', '.', '\n', '.\n', 'a', 'a\n', '.a\n.b\n..c\n', 'x\r\n.y\r\n', 'x\r.y\n', 'x\r', '\r\n.', 'a\n\n.\n', '.\r\n.\r\n'];
  for (const text of cases) {
    const stored = Buffer.from(text, 'latin1');
    const framed = toMultilineBuffer(stored);
    t.same(framed.bytes, oracleFramed(stored), `bytes of ${JSON.stringify(text)}`);
    t.equal(framed.wireSize, oracleWire(stored).length, `wire size of ${JSON.stringify(text)}`);
  }
  for (const f of fixtures) {
    const framed = toMultilineBuffer(f.bytes);
    t.same(framed.bytes, oracleFramed(f.bytes), `${f.name}: bytes`);
    t.equal(framed.wireSize, wireSize(f.bytes), `${f.name}: wire size`);
    t.same(toMultilineBuffer(toWireBuffer(f.bytes)).bytes, framed.bytes, `${f.name}: framing the wire form gives the same bytes`);
  }
  // Both code paths (no CR: string replace; CRs or over 256 KB: indexOf loop) on random inputs.
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const alphabet = ['.', '\n', '\r', 'a', ' ', '.', '\n'];
  for (let n = 0; n < 300; n++) {
    const length = Math.floor(random() * 40);
    let text = '';
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    const stored = Buffer.from(text, 'latin1');
    const framed = toMultilineBuffer(stored);
    t.same(framed.bytes, oracleFramed(stored), `random ${JSON.stringify(text)}`);
    t.equal(framed.wireSize, oracleWire(stored).length);
  }
  const big = Buffer.from('.line\n'.repeat(60_000));
  t.same(toMultilineBuffer(big).bytes, oracleFramed(big), 'over 256 KB without CR: the loop path');
  const source = Buffer.from('xx.a\nb');
  const view = new Uint8Array(source.buffer, source.byteOffset + 2, 4);
  t.equal(toMultilineBuffer(view).bytes.toString(), '..a\r\nb\r\n.\r\n', 'a Uint8Array view with an offset');
});
