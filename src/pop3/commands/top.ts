/**
 * TOP msg n, RFC 1939 section 7: the header, the blank line and at most n
 * body lines. Does not mark the message retrieved (it was not read whole).
 */
import { defineCommand } from '../command.js';
import { lineCount, messageNumber, Pop3SyntaxError, words } from '../args.js';

export const top = defineCommand({
  verb: 'TOP',
  states: ['TRANSACTION'],
  capability: () => 'TOP',
  async run(ctx, args) {
    const list = words(args);
    if (list.length > 2) throw new Pop3SyntaxError('Too many arguments');
    const message = messageNumber(ctx.state, list[0]);
    const lines = lineCount(list[1]);
    await ctx.sendMessage(message.index, { bodyLines: lines });
  },
});
