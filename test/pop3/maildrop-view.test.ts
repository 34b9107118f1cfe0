import t from 'tap';
import { liveMessages, liveTotals } from '../../src/pop3/maildrop-view.ts';
import type { TransactionState } from '../../src/pop3/state.ts';
import { createStore } from '../helpers/pop3-harness.ts';

t.test('totals and listings skip deleted messages and keep numbers', async (t) => {
  const { store } = await createStore(t, 'maildir');
  const user = { name: 'alice' };
  for (const body of ['a\n', 'bb\n', 'ccc\n']) await store.deliver({ recipients: [user], content: Buffer.from(body) });
  const maildrop = await store.openMaildrop(user);
  t.teardown(() => maildrop.release().then(() => store.close()));
  const state: TransactionState = { name: 'TRANSACTION', user, maildrop, deleted: new Set([1]), retrieved: new Set(), mechanism: 'USER' };
  t.same(liveTotals(state), { count: 2, octets: 3 + 5 });
  t.same([...liveMessages(state, (n, info) => `${n}:${info.size}`)], ['1:3', '3:5']);
  state.deleted.clear();
  t.same(liveTotals(state), { count: 3, octets: 12 });
});
