import t, { type Test } from 'tap';
import { Pop3Error } from '../../src/errors.ts';
import { isAscii, lineCount, messageNumber, noArguments, optionalMessageNumber, Pop3SyntaxError, singleMessageNumber, words } from '../../src/pop3/args.ts';
import type { TransactionState } from '../../src/pop3/state.ts';
import { createStore, messages } from '../helpers/pop3-harness.ts';

async function transaction(t: Test, count: number): Promise<TransactionState> {
  const { store } = await createStore(t, 'maildir');
  const user = { name: 'alice' };
  for (const content of messages(count)) await store.deliver({ recipients: [user], content: Buffer.from(content) });
  const maildrop = await store.openMaildrop(user);
  t.teardown(async () => {
    await maildrop.release();
    await store.close();
  });
  return { name: 'TRANSACTION', user, maildrop, deleted: new Set(), retrieved: new Set(), mechanism: 'USER' };
}


function refusal(fn: () => unknown): { text: string; isSyntax: boolean } | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof Pop3Error) return { text: err.message, isSyntax: err instanceof Pop3SyntaxError };
    throw err;
  }
  return undefined;
}

t.test('messageNumber: every kind of bad argument has its own text', async (t) => {
  const state = await transaction(t, 3);
  t.match(messageNumber(state, '2'), { number: 2, index: 1, info: state.maildrop.messages[1] });
  t.match(messageNumber(state, '003'), { number: 3 });
  t.same(refusal(() => messageNumber(state, undefined)), { text: 'Message number required', isSyntax: true });
  for (const bad of ['', 'x', '1x', '-1', '+1', '1.0', ' 1', '0x1', '１']) {
    t.same(refusal(() => messageNumber(state, bad)), { text: 'Invalid message number', isSyntax: true }, JSON.stringify(bad));
  }
  for (const out of ['0', '4', '4294967297', '1'.repeat(40)]) {
    t.same(refusal(() => messageNumber(state, out)), { text: 'No such message, only 3 messages in maildrop', isSyntax: false }, out);
  }
  state.deleted.add(0);
  t.same(refusal(() => messageNumber(state, '1')), { text: 'Message 1 already deleted', isSyntax: false });
  const single = await transaction(t, 1);
  t.same(refusal(() => messageNumber(single, '2')), { text: 'No such message, only 1 message in maildrop', isSyntax: false });
});

t.test('argument counts', async (t) => {
  const state = await transaction(t, 2);
  t.equal(optionalMessageNumber(state, ''), undefined);
  t.equal(optionalMessageNumber(state, '   '), undefined);
  t.match(optionalMessageNumber(state, '2'), { number: 2 });
  t.same(refusal(() => optionalMessageNumber(state, '1 2')), { text: 'Too many arguments', isSyntax: true });
  t.same(refusal(() => singleMessageNumber(state, '')), { text: 'Message number required', isSyntax: true });
  t.same(refusal(() => singleMessageNumber(state, '1  ')), undefined, 'trailing spaces are forgiven');
  t.same(refusal(() => singleMessageNumber(state, '1  2')), { text: 'Too many arguments', isSyntax: true });
  t.same(refusal(() => noArguments('x')), { text: 'This command takes no arguments', isSyntax: true });
  t.same(words('a b  c '), ['a', 'b', '', 'c']);
});

t.test('lineCount and isAscii', async (t) => {
  t.equal(lineCount('0'), 0);
  t.equal(lineCount('10'), 10);
  t.equal(lineCount('9'.repeat(30)), Number.MAX_SAFE_INTEGER);
  t.same(refusal(() => lineCount(undefined)), { text: 'Number of lines required', isSyntax: true });
  t.same(refusal(() => lineCount('-1')), { text: 'Invalid number of lines', isSyntax: true });
  t.ok(isAscii('alice@example.org'));
  t.notOk(isAscii('jürgen'));
});
