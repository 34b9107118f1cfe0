import t from 'tap';
import { LoginExchange } from '../../../src/auth/sasl/login.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

t.test('two prompts, two answers', async (t) => {
  const x = new LoginExchange();
  t.same(x.start(), { kind: 'challenge', challenge: 'VXNlcm5hbWU6' }, 'Username:');
  t.same(x.next(b64('alice')), { kind: 'challenge', challenge: 'UGFzc3dvcmQ6' }, 'Password:');
  t.same(x.next(b64('s3cret pw')), {
    kind: 'done',
    done: true,
    login: 'alice',
    credentials: { kind: 'password', mechanism: 'LOGIN', login: 'alice', password: 's3cret pw' },
  });
  t.match(x.next(b64('more')), { kind: 'error', error: 'finished' });
});

t.test('user name as the initial response', async (t) => {
  const x = new LoginExchange();
  t.same(x.start(b64('bob')), { kind: 'challenge', challenge: 'UGFzc3dvcmQ6' });
  t.match(x.next(b64('pw')), { kind: 'done', login: 'bob', credentials: { password: 'pw' } });
});

t.test('refusals at each step', async (t) => {
  t.match(new LoginExchange().start('='), { kind: 'error', error: 'malformed' }, 'empty user name');
  t.match(new LoginExchange().start('*'), { kind: 'error', error: 'cancelled' });
  t.match(new LoginExchange().start('bad!'), { kind: 'error', error: 'bad-base64' });
  const cancel = new LoginExchange();
  cancel.start();
  cancel.next(b64('alice'));
  t.match(cancel.next('*'), { kind: 'error', error: 'cancelled' });
  t.match(cancel.next(b64('pw')), { kind: 'error', error: 'finished' }, 'nothing after an end');
  const empty = new LoginExchange();
  empty.start();
  empty.next(b64('alice'));
  t.match(empty.next(''), { kind: 'error', error: 'malformed' }, 'empty password');
  const nul = new LoginExchange();
  nul.start();
  t.match(nul.next(b64('ali\0ce')), { kind: 'error', error: 'malformed' });
  const latin1 = new LoginExchange();
  latin1.start();
  t.match(latin1.next(b64(Buffer.from([0x6a, 0xf6, 0x72, 0x67]))), { kind: 'error', error: 'malformed' }, 'not UTF-8');
  t.match(new LoginExchange().next(b64('x')), { kind: 'error', error: 'finished' });
});
