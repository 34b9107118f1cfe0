/** Read-only views of a TRANSACTION's maildrop with DELE marks applied; numbering never shifts. */
import type { MessageInfo } from '../storage/store.js';
import type { TransactionState } from './state.js';

export interface Totals {
  readonly count: number;
  readonly octets: number;
}

/** Count and wire octets of the messages not marked deleted (STAT, LIST, RSET). */
export function liveTotals(state: TransactionState): Totals {
  let count = 0;
  let octets = 0;
  const { messages } = state.maildrop;
  for (let i = 0; i < messages.length; i++) {
    if (state.deleted.has(i)) continue;
    count++;
    octets += (messages[i] as MessageInfo).size;
  }
  return { count, octets };
}

/** One formatted line per message not marked deleted, with its original number. */
export function* liveMessages(
  state: TransactionState,
  format: (number: number, info: MessageInfo) => string,
): Generator<string> {
  const { messages } = state.maildrop;
  for (let i = 0; i < messages.length; i++) {
    if (!state.deleted.has(i)) yield format(i + 1, messages[i] as MessageInfo);
  }
}
