/**
 * `maildird user add` on a real terminal: util-linux `script` gives the CLI
 * a pseudo-terminal, so stdin.isTTY is true and echo control is real. Keys
 * are typed only after each prompt appears (no timing guesses).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { UserDatabase } from '../../../src/auth/user-db.js';
import { BIN, cliEnv } from '../../helpers/cli-run.js';

const SCRIPT = '/usr/bin/script';

function quote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Run the CLI on a pty, answering each prompt with the next key string; returns the terminal output and exit code. */
async function onTerminal(args: readonly string[], answers: readonly string[]): Promise<{ code: number | null; output: string }> {
  const line = ['unset NODE_OPTIONS; exec', process.execPath, BIN, ...args].map((a, i) => (i === 0 ? a : quote(a))).join(' ');
  const child = spawn(SCRIPT, ['-qfec', line, '/dev/null'], { env: cliEnv({ SHELL: '/bin/sh', TERM: 'dumb' }), stdio: 'pipe' });
  let output = '';
  let answered = 0;
  const prompts = /(New|Repeat new) password: /g;
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    const seen = output.match(prompts)?.length ?? 0;
    while (answered < seen && answered < answers.length) child.stdin.write(answers[answered++]);
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

t.test('prompts twice without echo and stores the password', { skip: existsSync(SCRIPT) ? false : 'no util-linux script' }, async (t) => {
  const file = path.join(t.testdir({}), 'passwd');
  const { code, output } = await onTerminal(['user', 'add', '--users', file, 'alice'], ['tty-Secret9\r', 'tty-Secret9\r']);
  t.equal(code, 0, output);
  t.match(output, /New password: [\s\S]*Repeat new password: /);
  t.notMatch(output, /tty-Secret9/, 'the password never appears on the terminal');
  t.notMatch(output, /\*/, 'not even as stars');
  t.match(output, `added alice to ${file}`);
  const db = await UserDatabase.load(file);
  t.ok(await db.verifyPassword('alice', 'tty-Secret9'));
});

t.test('two different passwords are refused and nothing is written', { skip: existsSync(SCRIPT) ? false : 'no util-linux script' }, async (t) => {
  const file = path.join(t.testdir({ passwd: 'bob:{PLAIN}old\n' }), 'passwd');
  const { code, output } = await onTerminal(['user', 'passwd', '--users', file, 'bob'], ['one\r', 'two\r']);
  t.equal(code, 65, output);
  t.match(output, 'maildird: the passwords do not match');
  t.equal(readFileSync(file, 'utf8'), 'bob:{PLAIN}old\n');
});
