/**
 * RETR msg, RFC 1939 section 5. The message is opened before `+OK` goes
 * out (STYLE.md 5), then streamed dot-stuffed; it is marked retrieved (Seen
 * at UPDATE) only once sent whole.
 */
import { defineCommand } from '../command.js';
import { singleMessageNumber } from '../args.js';

export const retr = defineCommand({
  verb: 'RETR',
  states: ['TRANSACTION'],
  async run(ctx, args) {
    const message = singleMessageNumber(ctx.state, args);
    const octets = await ctx.sendMessage(message.index);
    ctx.markRetrieved(message.index, octets);
  },
});
