/** The built executable: help, version, exit codes for bad command lines and bad config files. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO, runCli } from '../helpers/cli-run.js';

t.test('--help lists the commands; each command has its own help', async (t) => {
  const top = await runCli(['--help']);
  t.equal(top.code, 0);
  for (const command of ['serve', 'user', 'check']) t.match(top.stdout, new RegExp(`maildird ${command} `));
  const serve = await runCli(['serve', '--help']);
  t.equal(serve.code, 0);
  for (const flag of ['config', 'root', 'users', 'pop3', 'pop3s', 'smtp', 'submission', 'smtps', 'lmtp', 'http', 'tls-cert', 'tls-key', 'domain', 'log-level']) {
    t.match(serve.stdout, new RegExp(`--${flag} `), `serve --${flag}`);
  }
  const user = await runCli(['user', '--help']);
  t.equal(user.code, 0);
  for (const sub of ['add', 'passwd', 'del', 'list']) t.match(user.stdout, new RegExp(`maildird user ${sub}`));
  const add = await runCli(['user', 'add', '--help']);
  t.equal(add.code, 0);
  t.match(add.stdout, /--users/);
  const check = await runCli(['check', '--help']);
  t.equal(check.code, 0);
  t.match(check.stdout, /--root/);
  t.match(check.stdout, /--config/);
});

t.test('--version prints the package version', async (t) => {
  const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const result = await runCli(['--version']);
  t.equal(result.code, 0);
  t.equal(result.stdout.trim(), version);
});

t.test('bad command lines: exit 64 and one line on stderr', async (t) => {
  for (const args of [['serve', '--no-such-flag'], ['nope'], [], ['check', '--root']]) {
    const result = await runCli(args);
    t.equal(result.code, 64, args.join(' '));
    t.match(result.stderr, /^maildird: .+\n$/);
    t.equal(result.stdout, '');
  }
});

t.test('config files: missing 66, broken 78, each one line naming the problem', async (t) => {
  const dir = t.testdir({ 'broken.json': '{ "root": ', 'typo.json': '{ "rooot": "x" }' });
  const missing = await runCli(['check', '--config', 'nope.json'], { cwd: dir });
  t.equal(missing.code, 66);
  t.equal(missing.stderr, `maildird: config file ${path.join(dir, 'nope.json')}: not found\n`);
  const broken = await runCli(['check', '--config', 'broken.json'], { cwd: dir });
  t.equal(broken.code, 78);
  t.match(broken.stderr, /^maildird: config file .*broken\.json: not valid JSON/);
  const typo = await runCli(['check'], { cwd: dir, env: { MAILDIRD_CONFIG: 'typo.json' } });
  t.equal(typo.code, 78);
  t.match(typo.stderr, /unknown key rooot; allowed: root, users/);
});
