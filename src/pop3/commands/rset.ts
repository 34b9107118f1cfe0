/**
 * RSET, RFC 1939 section 5: unmark every deleted message. Like Dovecot,
 * it also forgets which messages were retrieved, so nothing is marked Seen
 * at UPDATE for messages read before the RSET.
 */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';
import { liveTotals } from '../maildrop-view.js';

export const rset = defineCommand({
  verb: 'RSET',
  states: ['TRANSACTION'],
  run(ctx, args) {
    noArguments(args);
    ctx.state.deleted.clear();
    ctx.state.retrieved.clear();
    const { count, octets } = liveTotals(ctx.state);
    ctx.ok(`Maildrop has ${count} message${count === 1 ? '' : 's'} (${octets} octets)`);
  },
});
