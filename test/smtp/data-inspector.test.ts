import t, { type Test } from 'tap';
import { DataInspector, type DataInspectorOptions } from '../../src/smtp/data-inspector.js';
import { SmtpReplyError } from '../../src/errors.js';

type Outcome = { ok: true; received: number } | { ok: false; code: number; enhanced: string };

function inspect(chunks: readonly Buffer[], options: DataInspectorOptions): Outcome {
  const inspector = new DataInspector(options);
  try {
    for (const chunk of chunks) inspector.update(chunk);
    inspector.end();
    return { ok: true, received: inspector.receivedHeaders };
  } catch (err) {
    if (!(err instanceof SmtpReplyError)) throw err;
    // The failure is remembered (a caller that catches a wrapped error asks for it).
    if (inspector.failure !== err) return { ok: false, code: 0, enhanced: 'not remembered' };
    return { ok: false, code: err.replyCode, enhanced: err.enhancedCode };
  }
}

/** Every way of cutting the input in two, and one byte at a time: same outcome. */
function splits(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input]];
  for (let i = 1; i < input.length; i++) out.push([input.subarray(0, i), input.subarray(i)]);
  out.push([...input].map((b) => Buffer.from([b])));
  return out;
}

function check(t: Test, name: string, text: string, options: DataInspectorOptions, expected: Outcome): void {
  const input = Buffer.from(text, 'latin1');
  for (const chunks of splits(input)) {
    const got = inspect(chunks, options);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.same(got, expected, `${name}: split ${chunks.map((c) => c.length).join('+')}`);
      return;
    }
  }
  t.pass(`${name}: same outcome at every split`);
}

const strict: DataInspectorOptions = { strictLineEnds: true, maxReceived: 3 };
const lenient: DataInspectorOptions = { strictLineEnds: false, maxReceived: 3 };
const OK = (received = 0): Outcome => ({ ok: true, received });
const BARE_CR: Outcome = { ok: false, code: 550, enhanced: '5.6.0' };
const LOOP: Outcome = { ok: false, code: 554, enhanced: '5.4.6' };
const TOO_BIG: Outcome = { ok: false, code: 552, enhanced: '5.3.4' };

t.test('clean CRLF and bare-LF messages pass', async (t) => {
  check(t, 'crlf', 'Subject: x\r\n\r\nbody\r\n', strict, OK());
  check(t, 'bare LF lines are normalised, not refused', 'Subject: x\n\nline 1\nline 2\n', strict, OK());
  check(t, 'mixed', 'Subject: x\r\n\nline\r\nline\n', strict, OK());
  check(t, 'empty', '', strict, OK());
  check(t, 'a stuffed dot line between CRLFs is content', 'a\r\n.\r\nb\r\n', strict, OK());
  check(t, 'a dot line as the first line (sent as "..")', '.\r\n', strict, OK());
  check(t, 'dots inside lines', 'a.\n.b\r\n..\r\n', strict, OK());
});

t.test('bare CR is refused in strict mode, kept as data otherwise', async (t) => {
  check(t, '<CR>.<CR>', 'hello\r.\rMAIL FROM:<evil@x>\r\n', strict, BARE_CR);
  check(t, 'CR in a line', 'a\rb\r\n', strict, BARE_CR);
  check(t, 'CR CR LF', 'a\r\r\n', strict, BARE_CR);
  check(t, 'final CR', 'a\r', strict, BARE_CR);
  check(t, 'CR before LF at a chunk edge is fine', 'a\r\nb\r\n', strict, OK());
  check(t, 'lenient keeps CR', 'a\rb\r\n.\r\rx', lenient, OK());
});

t.test('fake end-of-data lines are refused in strict mode', async (t) => {
  const fake: Outcome = { ok: false, code: 550, enhanced: '5.6.0' };
  check(t, '<LF>.<LF>', 'hello\n.\nMAIL FROM:<evil@x>\r\n', strict, fake);
  check(t, '<LF>.<CR><LF>', 'hello\n.\r\nMAIL FROM:<evil@x>\r\n', strict, fake);
  check(t, '<CR><LF>.<LF>', 'hello\r\n.\nMAIL FROM:<evil@x>\r\n', strict, fake);
  check(t, 'first line "." ending in LF', '.\nx\r\n', strict, fake);
  check(t, 'lenient (deliver) accepts them', 'hello\n.\nx\n', lenient, OK());
});

t.test('Received headers are counted in the header section only', async (t) => {
  check(t, 'three is the limit', 'Received: a\r\nReceived: b\r\n\tcont\r\nRECEIVED : c\r\n\r\nReceived: body\r\n', strict, OK(3));
  check(t, 'four is a loop', 'Received: a\nReceived: b\nreceived:c\nReceived: d\n\nbody\n', strict, LOOP);
  check(t, 'not a Received header', 'X-Received: a\r\nReceivedx: b\r\n Received: c\r\n\r\n', strict, OK(0));
  check(t, 'after the blank line nothing counts', 'Subject: a\n\nReceived: 1\nReceived: 2\nReceived: 3\nReceived: 4\n', strict, OK(0));
});

t.test('size limit counts every octet and trips at limit + 1', async (t) => {
  check(t, 'at the limit', '12345\r\n', { strictLineEnds: true, maxBytes: 7 }, OK());
  check(t, 'one over', '123456\r\n', { strictLineEnds: true, maxBytes: 7 }, TOO_BIG);
  const inspector = new DataInspector({ strictLineEnds: true, maxBytes: 2 });
  t.throws(() => inspector.update(Buffer.from('abc')));
  inspector.update(Buffer.from('more'));
  t.equal(inspector.bytes, 7, 'bytes are still counted after a failure');
  t.equal(inspector.failure?.replyCode, 552);
});
