/** UIDL [msg], RFC 1939 section 7: unique-ids, deleted messages left out, numbers fixed. */
import { defineCommand } from '../command.js';
import { optionalMessageNumber } from '../args.js';
import { liveMessages } from '../maildrop-view.js';

export const uidl = defineCommand({
  verb: 'UIDL',
  states: ['TRANSACTION'],
  capability: () => 'UIDL',
  async run(ctx, args) {
    const one = optionalMessageNumber(ctx.state, args);
    if (one !== undefined) {
      ctx.ok(`${one.number} ${one.info.uidl}`);
      return;
    }
    await ctx.multiline('Unique-ID listing follows', liveMessages(ctx.state, (number, info) => `${number} ${info.uidl}`));
  },
});
