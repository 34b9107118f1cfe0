import t from 'tap';
import { createHmac } from 'node:crypto';
import { CramMd5Exchange, newChallenge } from '../../../src/auth/sasl/cram-md5.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const rfc = { hostname: 'postoffice.reston.mci.net', now: () => 697170952_000, random: () => '1896' };

t.test('RFC 2195 section 2 example, byte for byte', async (t) => {
  const x = new CramMd5Exchange(rfc);
  t.same(x.start(), { kind: 'challenge', challenge: 'PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+' });
  t.same(x.next('dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw'), {
    kind: 'done',
    done: true,
    login: 'tim',
    credentials: {
      kind: 'digest',
      mechanism: 'CRAM-MD5',
      login: 'tim',
      challenge: '<1896.697170952@postoffice.reston.mci.net>',
      digestHex: 'b913a602c7eda7a495b4e6e7334d3890',
    },
  });
});

t.test('challenges are unique and well formed', async (t) => {
  const a = newChallenge({ hostname: 'mail.example.org' });
  const b = newChallenge({ hostname: 'mail.example.org' });
  t.match(a, /^<\d+\.\d+@mail\.example\.org>$/);
  t.not(a, b);
  t.equal(newChallenge({ ...rfc, hostname: 'bad host>' }), '<1896.697170952@localhost>', 'odd names become localhost');
});

t.test('user names with spaces, upper-case hex', async (t) => {
  const y = new CramMd5Exchange(rfc);
  const step = y.start();
  const text = step.kind === 'challenge' ? Buffer.from(step.challenge, 'base64').toString() : '';
  const digest = createHmac('md5', 'secret').update(text).digest('hex').toUpperCase();
  t.match(y.next(b64(`John Smith ${digest}`)), { kind: 'done', login: 'John Smith', credentials: { digestHex: digest.toLowerCase() } });
});

t.test('refusals', async (t) => {
  t.match(new CramMd5Exchange(rfc).start('dGlt'), { kind: 'error', error: 'malformed' }, 'no initial response');
  t.match(new CramMd5Exchange(rfc).start('='), { kind: 'error', error: 'malformed' });
  t.match(new CramMd5Exchange(rfc).start('*'), { kind: 'error', error: 'cancelled' });
  for (const [line, error] of [
    ['*', 'cancelled'],
    ['dGlt', 'malformed'],
    [b64('tim b913a602c7eda7a495b4e6e7334d389'), 'malformed'],
    [b64(' b913a602c7eda7a495b4e6e7334d3890'), 'malformed'],
    [b64('tim b913a602c7eda7a495b4e6e7334d389g'), 'malformed'],
    [b64('tim\0 b913a602c7eda7a495b4e6e7334d3890'), 'malformed'],
    ['dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\t', 'bad-base64'],
  ] as const) {
    const x = new CramMd5Exchange(rfc);
    x.start();
    t.match(x.next(line), { kind: 'error', error }, `${JSON.stringify(line)} -> ${error}`);
  }
  t.match(new CramMd5Exchange(rfc).next('dGlt'), { kind: 'error', error: 'finished' });
});
