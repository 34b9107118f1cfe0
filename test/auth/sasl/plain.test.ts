import t from 'tap';
import { PlainExchange } from '../../../src/auth/sasl/plain.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

t.test('RFC 4616 message as the initial response', async (t) => {
  // RFC 4616 section 4's example.
  t.same(new PlainExchange().start('AHRpbQB0YW5zdGFhZnRhbnN0YWFm'), {
    kind: 'done',
    done: true,
    login: 'tim',
    credentials: { kind: 'password', mechanism: 'PLAIN', login: 'tim', password: 'tanstaaftanstaaf' },
  });
  // RFC 5034 section 6's example: authzid equal to authcid.
  t.match(new PlainExchange().start('dGVzdAB0ZXN0AHRlc3Q='), { kind: 'done', login: 'test', credentials: { password: 'test' } });
  t.match(new PlainExchange().start(b64('\0jörg\0pässwörd')), { kind: 'done', login: 'jörg', credentials: { password: 'pässwörd' } });
  t.match(new PlainExchange().start(b64('\0u\0pass with spaces ')), { credentials: { password: 'pass with spaces ' } });
});

t.test('after an empty challenge', async (t) => {
  const x = new PlainExchange();
  t.same(x.start(), { kind: 'challenge', challenge: '' });
  t.match(x.next(b64('\0tim\0pw')), { kind: 'done', login: 'tim' });
  t.match(x.next(b64('\0tim\0pw')), { kind: 'error', error: 'finished' }, 'one message only');
});

t.test('refusals', async (t) => {
  const cases: [string, string][] = [
    [b64('Ursel\0Kurt\0xipj3plmq'), 'authzid-denied'], // RFC 4616's proxy example: no proxy authorization here
    [b64('tim\0pw'), 'malformed'],
    [b64('\0tim\0pw\0extra'), 'malformed'],
    [b64('\0\0pw'), 'malformed'],
    [b64('\0tim\0'), 'malformed'],
    [b64(Buffer.from([0, 0xff, 0, 0x41])), 'malformed'],
    ['=', 'malformed'],
    ['*', 'cancelled'],
    ['AHRpbQB0YW5zdGFhZnRhbnN0YWFm ', 'bad-base64'],
    ['AHRpbQB0YW5zdGFhZnRhbnN0YWF', 'bad-base64'],
  ];
  for (const [line, error] of cases) {
    t.match(new PlainExchange().start(line), { kind: 'error', error }, `${JSON.stringify(line)} -> ${error}`);
  }
  const waiting = new PlainExchange();
  waiting.start();
  t.match(waiting.next('*'), { kind: 'error', error: 'cancelled' });
  t.match(new PlainExchange().next('AAAA'), { kind: 'error', error: 'finished' }, 'next before start');
  const twice = new PlainExchange();
  twice.start();
  t.match(twice.start(), { kind: 'error', error: 'finished' });
});
