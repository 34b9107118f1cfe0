/** STAT, RFC 1939 section 5: `+OK count octets`, deleted messages left out. */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';
import { liveTotals } from '../maildrop-view.js';

export const stat = defineCommand({
  verb: 'STAT',
  states: ['TRANSACTION'],
  run(ctx, args) {
    noArguments(args);
    const { count, octets } = liveTotals(ctx.state);
    ctx.ok(`${count} ${octets}`);
  },
});
