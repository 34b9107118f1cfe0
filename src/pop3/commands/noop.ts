/** NOOP, RFC 1939 section 5. */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';

export const noop = defineCommand({
  verb: 'NOOP',
  states: ['TRANSACTION'],
  run(ctx, args) {
    noArguments(args);
    ctx.ok();
  },
});
