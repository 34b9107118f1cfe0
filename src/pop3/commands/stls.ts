/**
 * STLS, RFC 2595 section 4: only in AUTHORIZATION, only on a plain
 * connection with TLS configured. Everything the client sent after STLS
 * before the handshake is thrown away (the STARTTLS command injection
 * class, CVE-2011-0411 and kin), and any USER given before is forgotten:
 * the client must authenticate over the encrypted channel.
 */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';
import { Pop3Error } from '../../errors.js';

export const stls = defineCommand({
  verb: 'STLS',
  states: ['AUTHORIZATION'],
  capability: ({ facts, state }) => (facts.canStartTls && state === 'AUTHORIZATION' ? 'STLS' : undefined),
  async run(ctx, args) {
    noArguments(args);
    if (ctx.facts.isTls) throw new Pop3Error('Command not permitted when TLS active');
    if (!ctx.facts.canStartTls) throw new Pop3Error('TLS is not available on this server');
    ctx.state.pendingUser = undefined;
    await ctx.startTls();
  },
});
