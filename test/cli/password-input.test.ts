import t from 'tap';
import { PassThrough, Readable } from 'node:stream';
import { readLine, readNewPassword } from '../../src/cli/password-input.js';
import type { CliInput } from '../../src/cli/io.js';

function sink(): PassThrough & { text(): string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  return Object.assign(out, { text: () => Buffer.concat(chunks).toString('utf8') });
}

t.test('readLine takes one line and leaves the rest of the input unread', async (t) => {
  const input = new PassThrough();
  input.end('first\r\nsecond\nthird');
  t.equal(await readLine(input), 'first', 'CR before LF dropped');
  t.equal(await readLine(input), 'second');
  t.equal(await readLine(input), 'third', 'last line without LF');
  t.equal(await readLine(input), undefined, 'end of input');
});

t.test('readLine joins chunks split anywhere', async (t) => {
  const input = Readable.from([Buffer.from('pa'), Buffer.from('ss wo'), Buffer.from('rd\nnext')], { objectMode: false });
  t.equal(await readLine(input), 'pass word');
});

t.test('readLine refuses an absurdly long line', async (t) => {
  const input = new PassThrough();
  input.end('x'.repeat(5000));
  await t.rejects(readLine(input), { name: 'ConfigError', exitCode: 65 });
});

t.test('readNewPassword from a pipe: one line, no prompt, no confirmation', async (t) => {
  const input = new PassThrough();
  const prompts = sink();
  input.end('s3cret pass\n');
  t.equal(await readNewPassword(input, prompts), 's3cret pass');
  t.equal(prompts.text(), '');
});

t.test('readNewPassword refuses empty and missing passwords', async (t) => {
  const empty = new PassThrough();
  empty.end('\n');
  await t.rejects(readNewPassword(empty, sink()), { name: 'ConfigError', exitCode: 65, message: /empty password/ });
  const none = new PassThrough();
  none.end();
  await t.rejects(readNewPassword(none, sink()), { name: 'ConfigError', exitCode: 66, message: /no password on stdin/ });
});

/**
 * A terminal in raw mode, as far as readNewPassword can tell: the stream
 * records raw-mode switches. (The real terminal is driven through a pty in
 * test/cli/user-tty.test.ts.)
 */
function terminal(): PassThrough & CliInput & { modes: boolean[] } {
  const stream = new PassThrough();
  const modes: boolean[] = [];
  return Object.assign(stream, { isTTY: true, setRawMode: (mode: boolean) => modes.push(mode), modes });
}

t.test('on a terminal: raw mode, two prompts, editing keys, typed-ahead input kept', async (t) => {
  const tty = terminal();
  const prompts = sink();
  const result = readNewPassword(tty, prompts);
  tty.write('pw\u007fW1x\u0008\r');
  tty.write('junk\u0015pW1\r');
  t.equal(await result, 'pW1');
  t.same(tty.modes, [true, false], 'raw mode on, then back off');
  t.equal(prompts.text(), 'New password: \nRepeat new password: \n', 'prompts only: nothing typed is echoed');
});

t.test('on a terminal: a mismatch and Ctrl-C are refused, raw mode restored', async (t) => {
  const tty = terminal();
  const mismatch = readNewPassword(tty, sink());
  tty.write('one\rtwo\r');
  await t.rejects(mismatch, { name: 'ConfigError', exitCode: 65, message: 'the passwords do not match' });
  t.same(tty.modes, [true, false]);
  const cancelled = terminal();
  const result = readNewPassword(cancelled, sink());
  cancelled.write('abc\u0003');
  await t.rejects(result, { message: 'cancelled' });
  t.same(cancelled.modes, [true, false]);
});
