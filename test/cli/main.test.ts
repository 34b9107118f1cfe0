/**
 * main() in this process with its own streams: usage errors, exit codes and
 * the one-line error format. The built CLI as a child process is in
 * bin.test.ts and the command tests.
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/io.js';

function io(cwd: string, env: Record<string, string> = {}): CliIo & { err(): string; out(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const stdin = new PassThrough();
  stdin.end();
  return {
    stdin,
    stdout,
    stderr,
    env,
    cwd,
    out: () => Buffer.concat(out).toString('utf8'),
    err: () => Buffer.concat(err).toString('utf8'),
  };
}

t.test('usage errors: one line on stderr, exit 64', async (t) => {
  const cwd = t.testdir({});
  for (const argv of [[], ['frobnicate'], ['serve', '--bogus'], ['serve', 'extra'], ['user'], ['user', 'add'], ['serve', '--pop3']]) {
    const streams = io(cwd);
    t.equal(await main(argv, streams), 64, argv.join(' ') || '(no arguments)');
    t.match(streams.err(), /^maildird: [^\n]+\n$/, 'exactly one line');
    t.notMatch(streams.err(), /\bat .*\.(ts|js):\d+/, 'no stack trace');
  }
});

t.test('a bad flag value names the key and exits 64; a bad env value exits 78', async (t) => {
  const cwd = t.testdir({});
  const flag = io(cwd);
  t.equal(await main(['check', '--root', ''], flag), 64);
  const env = io(cwd, { MAILDIRD_LAYOUT: '../%u' });
  t.equal(await main(['check'], env), 78);
  t.match(env.err(), /^maildird: invalid value for layout from MAILDIRD_LAYOUT: "\.\.\/%u"; allowed: /);
});

t.test('check runs in-process and reports to the given stdout', async (t) => {
  const cwd = t.testdir({ mail: { alice: { cur: {}, new: { '1700000000.M1P1.host,S=3,W=4': 'hi\n' }, tmp: {} } } });
  const streams = io(cwd);
  t.equal(await main(['check'], streams), 0);
  t.match(streams.out(), /alice +maildir +1 +1 +3/);
  t.match(streams.out(), /no problems found/);
  t.equal(streams.err(), '');
});
