/**
 * DELE msg, RFC 1939 section 5: only marks the message. Nothing is removed
 * before QUIT's UPDATE commits (DESIGN.md invariant 2); the number stays
 * taken, so later commands naming it get "already deleted".
 */
import { defineCommand } from '../command.js';
import { singleMessageNumber } from '../args.js';

export const dele = defineCommand({
  verb: 'DELE',
  states: ['TRANSACTION'],
  run(ctx, args) {
    const message = singleMessageNumber(ctx.state, args);
    ctx.state.deleted.add(message.index);
    ctx.ok(`Message ${message.number} deleted`);
  },
});
