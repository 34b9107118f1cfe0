/** CAPA, RFC 2449 section 5: the capability list, derived from the command table (capabilities.ts). */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';

export const capa = defineCommand({
  verb: 'CAPA',
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(ctx, args) {
    noArguments(args);
    await ctx.multiline('Capability list follows', ctx.capabilities());
  },
});
