/**
 * Pretty log lines (src/log/pretty.ts) from a real pino logger, and
 * `maildird serve` choosing them with logFormat (auto: only on a terminal).
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/logger.js';
import { formatLine, PrettyDestination } from '../../src/log/pretty.js';
import { ServeProcess } from '../helpers/cli-run.js';

function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

t.test('a pino line becomes time, level, connection, message, key=value; secrets stay masked', async (t) => {
  const out = collector();
  const logger = createLogger({ level: 'debug', destination: new PrettyDestination(out.stream, { colors: false }) });
  const session = logger.child({ proto: 'pop3', cid: 'c1', remote: '192.0.2.7' });
  session.info({ user: 'alice', messages: 2, note: 'two words', password: 'hunter2', tls: false }, 'login');
  session.debug({ from: 'AUTHORIZATION', to: 'TRANSACTION' }, 'state');
  logger.warn({ err: new Error('disk "full"') }, 'delivery failed');
  const lines = out.text().split('\n');
  t.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  pop3 #c1 login remote=192\.0\.2\.7 user=alice messages=2 note="two words" password=\*\*\* tls=false$/);
  t.match(lines[1], /^\d\d:\d\d:\d\d\.\d{3} DEBUG pop3 #c1 state remote=192\.0\.2\.7 from=AUTHORIZATION to=TRANSACTION$/);
  t.match(lines[2], /^\d\d:\d\d:\d\d\.\d{3} WARN  delivery failed err="disk \\"full\\""$/);
  t.match(lines[3], /^ {4}Error: disk "full"$/, 'the stack below, indented');
  t.match(lines[4], /^ {4} +at /);
  t.notMatch(out.text(), /hunter2/);
  t.notMatch(out.text(), /"pid"|pid=/, 'pid and name are not repeated');
  t.equal(lines.at(-1), '', 'ends with a line end');
});

t.test('colours only when asked; a line that is not JSON passes through', async (t) => {
  const line = JSON.stringify({ level: 50, time: 0, msg: 'boom', pid: 1 });
  t.match(formatLine(line, true), /\u001b\[31mERROR\u001b\[0m boom$/);
  t.notMatch(formatLine(line, false), /\u001b/);
  t.equal(formatLine('not json at all', true), 'not json at all');
  t.equal(formatLine('[1,2]', false), '[1,2]');
});

t.test('serve: logFormat pretty gives pretty lines; auto on a pipe gives JSON', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: false } }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: {},
  });
  const pretty = ServeProcess.start([], { cwd: dir, env: { MAILDIRD_LOG_FORMAT: 'pretty' } });
  t.teardown(() => pretty.stop('SIGKILL'));
  await pretty.ready();
  const result = await pretty.stop();
  t.equal(result.code, 0);
  t.match(result.stderr, /^\d\d:\d\d:\d\d\.\d{3} INFO  maildird started listeners=\[/m);
  t.notMatch(result.stderr, /^\{/m, 'no JSON lines');
  t.notMatch(result.stderr, /\u001b\[/, 'no colours: stderr is not a terminal');

  const auto = ServeProcess.start([], { cwd: dir });
  t.teardown(() => auto.stop('SIGKILL'));
  await auto.ready();
  const json = await auto.stop();
  t.match(json.stderr, /^\{"level":30,.*"msg":"maildird started"/m, 'auto on a pipe: JSON');
});
