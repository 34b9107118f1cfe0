import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/logger.js';
import { smtpServerLogger } from '../../src/smtp/log-adapter.js';

function capture(level: 'trace' | 'info') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, adapter: smtpServerLogger(createLogger({ level, destination }).child({ proto: 'smtp' })) };
}

t.test('smtp-server levels become ours; fields are renamed; printf args formatted', async (t) => {
  const { lines, adapter } = capture('trace');
  adapter.debug({ tnx: 'command', cid: 'c1', command: 'MAIL', user: 'alice' }, 'C:', 'MAIL FROM:<a@b>');
  adapter.info({ tnx: 'connection', cid: 'c1', host: '192.0.2.1', hostname: '[192.0.2.1]' }, 'Connection from %s', '[192.0.2.1]');
  adapter.error({ tnx: 'error', err: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }, '%s', 'reset');
  adapter.error({ tnx: 'error', err: new Error('weird') }, 'x');
  adapter.info('bare message %d', 5);
  t.match(lines, [
    { level: 20, proto: 'smtp', cid: 'c1', user: 'alice', msg: 'C: MAIL FROM:<a@b>' },
    { level: 30, remote: '192.0.2.1', msg: 'Connection from [192.0.2.1]' },
    { level: 20, msg: 'reset' },
    { level: 40, msg: 'x' },
    { level: 30, msg: 'bare message 5' },
  ]);
  t.notOk('tnx' in (lines[0] ?? {}), 'smtp-server fields do not leak in');
});

t.test('levels below the logger are dropped before formatting', async (t) => {
  const { lines, adapter } = capture('info');
  adapter.debug({ tnx: 'send' }, 'S:', '250 OK');
  adapter.info({ tnx: 'command' }, 'C:', 'NOOP');
  t.same(lines, []);
});

t.test('trace off: commands and replies are not logged, other events are', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const adapter = smtpServerLogger(createLogger({ level: 'trace', destination }).child({ proto: 'lmtp' }), false);
  adapter.debug({ tnx: 'command' }, 'C:', 'LHLO x');
  adapter.info({ tnx: 'connection', host: '127.0.0.1' }, 'Connection from %s', 'x');
  t.match(lines, [{ proto: 'lmtp', msg: 'Connection from x' }]);
  t.equal(lines.length, 1);
});
