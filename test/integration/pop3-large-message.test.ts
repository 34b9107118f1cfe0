/**
 * A 200 MB message streams in constant memory: the server, in its own
 * process, sends it whole (dot-stuffed, terminated) while its peak RSS
 * grows by less than 50 MB (issue 3: RETR honours socket backpressure and
 * never holds a message).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { workDir } from '../helpers/pop3-harness.ts';

const SIZE = 200 * 1024 * 1024;
const MAX_GROWTH = 50 * 1024 * 1024;

/** Write a ~200 MB message of 100-octet lines, every 10th starting with a dot. Returns wire and stuffed sizes. */
async function writeBigMessage(path: string): Promise<{ wire: number; stuffed: number }> {
  const out = createWriteStream(path);
  const plain = `${'x'.repeat(99)}\n`;
  const dotted = `.${'y'.repeat(98)}\n`;
  const block = Buffer.from(`${plain.repeat(9)}${dotted}`.repeat(1000)); // 1,000,000 octets, 10,000 lines
  const header = Buffer.from('Subject: big\n\n');
  out.write(header);
  let stored = header.length;
  let lines = 2;
  let dots = 0;
  while (stored + block.length <= SIZE) {
    if (!out.write(block)) await once(out, 'drain');
    stored += block.length;
    lines += 10_000;
    dots += 1000;
  }
  out.end();
  await once(out, 'finish');
  return { wire: stored + lines, stuffed: stored + lines + dots };
}

t.test('RETR of a 200 MB message: whole, and the server RSS grows < 50 MB', async (t) => {
  const root = workDir(t, 'mail');
  const maildir = join(root, 'alice');
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, sub), { recursive: true });
  const sizes = await writeBigMessage(join(maildir, 'new', '1700000000.M1P1Q1.big'));

  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('../helpers/pop3-server-child.ts', import.meta.url).pathname, JSON.stringify({ root, users: [['alice', 'secret']] })],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.teardown(() => child.kill());
  const replies = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const reply = async (): Promise<Record<string, number | boolean>> => JSON.parse((await replies.next()).value as string) as Record<string, number | boolean>;
  const ask = async (command: string) => {
    child.stdin.write(`${command}\n`);
    return reply();
  };
  const { port } = (await reply()) as { port: number };

  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = 0;
  let text = '';
  let tail = Buffer.alloc(0);
  let onData: ((chunk: Buffer) => void) | undefined;
  socket.on('data', (chunk: Buffer) => onData?.(chunk));
  const lineReply = (): Promise<string> =>
    new Promise((resolve) => {
      const take = (): boolean => {
        const lf = text.indexOf('\n');
        if (lf === -1) return false;
        const line = text.slice(0, lf + 1);
        text = text.slice(lf + 1);
        onData = undefined;
        resolve(line.trimEnd());
        return true;
      };
      if (take()) return;
      onData = (chunk) => {
        text += chunk.toString('latin1');
        take();
      };
    });
  t.match(await lineReply(), /^\+OK/);
  socket.write('USER alice\r\nPASS secret\r\n');
  t.equal(await lineReply(), '+OK');
  t.match(await lineReply(), /^\+OK Logged in, maildrop has 1 message/);
  socket.write('LIST 1\r\n');
  t.equal(await lineReply(), `+OK 1 ${sizes.wire}`);

  const before = await ask('rss');
  const reset = await ask('reset-hwm');
  const done = new Promise<void>((resolve) => {
    onData = (chunk) => {
      received += chunk.length;
      tail = Buffer.concat([tail, chunk]).subarray(-5);
      if (tail.toString('latin1') === '\r\n.\r\n') resolve();
    };
  });
  socket.write('RETR 1\r\n');
  await done;
  const after = await ask('rss');
  const firstLine = `+OK ${sizes.wire} octets\r\n`.length;
  t.equal(received, firstLine + sizes.stuffed + 3, 'every octet, dot-stuffed, then the terminator');
  const baseline = reset.ok === true ? (before.rss as number) : (before.hwm as number);
  const growth = (after.hwm as number) - baseline;
  t.comment(`server RSS before ${((before.rss as number) / 1e6).toFixed(1)} MB, peak during RETR ${((after.hwm as number) / 1e6).toFixed(1)} MB (peak reset: ${String(reset.ok)})`);
  t.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / 1e6).toFixed(1)} MB (< 50 MB)`);
  socket.write('QUIT\r\n');
  socket.end();
  child.stdin.write('close\n');
  await once(child, 'exit');
});
