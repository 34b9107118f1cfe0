import t, { type Test } from 'tap';
import { DataInspector, type DataInspectorOptions } from '../../src/smtp/data-inspector.js';
import { SmtpReplyError } from '../../src/errors.js';
import { codeOf } from '../helpers/smtp-client.js';
import { delivered, splitTrace, startSmtp } from '../helpers/smtp-setup.js';

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

/*
 * Over a real socket: what smtp-server hands over for each line form, and
 * that a smuggled second message never becomes one.
 */
t.test('smuggling payloads over a real socket: refused, nothing stored, hidden commands never run', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  const hidden = 'MAIL FROM:<spoofed@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n';
  const payloads: [string, string][] = [
    ['<LF>.<LF>', `Subject: one\r\n\r\nhello\n.\n${hidden}`],
    ['<CR>.<CR>', `Subject: one\r\n\r\nhello\r.\r${hidden}`],
    ['<LF>.<CR><LF>', `Subject: one\r\n\r\nhello\n.\r\n${hidden}`],
    ['<CR><LF>.<LF>', `Subject: one\r\n\r\nhello\r\n.\n${hidden}`],
    ['<CR><LF>.<CR> (bare CR)', `Subject: one\r\n\r\nhello\r\n.\r${hidden}`],
  ];
  for (const [name, payload] of payloads) {
    c.write('MAIL FROM:<sender@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
    t.same((await c.replies(3)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354'], name);
    c.write(`${payload}.\r\nNOOP\r\n`);
    const reply = await c.reply();
    t.equal(codeOf(reply), '550 5.6.0', `${name}: refused`);
    t.equal(codeOf(await c.reply()), '250 2.0.0', `${name}: the next reply answers NOOP: no hidden command ran`);
  }
  await c.quit();
  t.same(await delivered(h.root ?? '', 'alice'), [], 'nothing stored for alice');
  t.same(await delivered(h.root ?? '', 'bob'), [], 'no smuggled message for bob');
});

t.test('line forms real clients send: bare LF normalised, dot-stuffing undone, a "." line kept', async (t) => {
  const h = await startSmtp(t);
  const c = await h.connect();
  await c.ehlo();
  const bodies = [
    'Subject: lf\n\nbare LF lines\nfrom a script\r\n',
    'Subject: stuffed\r\n\r\n..leading dot\r\n..\r\nend\r\n',
    '..\r\n',
    '',
  ];
  for (const body of bodies) {
    c.write(`MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n${body}.\r\n`);
    t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0'], JSON.stringify(body));
  }
  await c.quit();
  const stored = (await delivered(h.root ?? '', 'alice')).map(([, b]) => splitTrace(b).rest);
  t.same(stored.sort(), [
    '',
    '.\n',
    'Subject: lf\n\nbare LF lines\nfrom a script\n',
    'Subject: stuffed\n\n.leading dot\n.\nend\n',
  ].sort());
});

t.test('hop limit: more Received headers than maxHops is a mail loop (554 5.4.6)', async (t) => {
  const h = await startSmtp(t, { limits: { maxHops: 3 } });
  const c = await h.connect();
  await c.ehlo();
  const headers = (n: number): string => Array.from({ length: n }, (_v, i) => `Received: from hop${i}\r\n`).join('');
  c.write(`MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n${headers(4)}Subject: loop\r\n\r\nx\r\n.\r\n`);
  t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '554 5.4.6']);
  c.write(`MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n${headers(3)}Subject: ok\r\n\r\nx\r\n.\r\n`);
  t.same((await c.replies(4)).map(codeOf), ['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']);
  await c.quit();
  t.equal((await delivered(h.root ?? '', 'alice')).length, 1);
});
