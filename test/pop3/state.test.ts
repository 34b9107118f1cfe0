import t from 'tap';
import { assertNever, authorizationState } from '../../src/pop3/state.ts';

t.test('a session starts in AUTHORIZATION with no pending user', async (t) => {
  t.same(authorizationState(), { name: 'AUTHORIZATION', pendingUser: undefined });
});

t.test('assertNever throws on a value the types said could not exist', async (t) => {
  t.throws(() => assertNever('CLOSED' as never), /unexpected value: "CLOSED"/);
});
