/**
 * LIST [msg], RFC 1939 section 5. Sizes are wire sizes (DESIGN.md
 * invariant 5). Deleted messages are left out and the others keep their
 * numbers: after DELE 2 the listing reads 1, 3, 4...
 */
import { defineCommand } from '../command.js';
import { optionalMessageNumber } from '../args.js';
import { liveMessages, liveTotals } from '../maildrop-view.js';

export const list = defineCommand({
  verb: 'LIST',
  states: ['TRANSACTION'],
  async run(ctx, args) {
    const one = optionalMessageNumber(ctx.state, args);
    if (one !== undefined) {
      ctx.ok(`${one.number} ${one.info.size}`);
      return;
    }
    const { count, octets } = liveTotals(ctx.state);
    await ctx.multiline(
      `${count} message${count === 1 ? '' : 's'} (${octets} octets)`,
      liveMessages(ctx.state, (number, info) => `${number} ${info.size}`),
    );
  },
});
