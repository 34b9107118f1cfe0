/**
 * PASS string, RFC 1939 section 7. The password is the whole rest of the
 * line, spaces included (the RFC allows servers to take it so). It never
 * reaches the log: the trace shows `PASS ***`.
 */
import { defineCommand } from '../command.js';
import { isAscii, Pop3SyntaxError } from '../args.js';
import { Pop3Error } from '../../errors.js';
import { PLAINTEXT_DISALLOWED } from './user.js';

export const pass = defineCommand({
  verb: 'PASS',
  states: ['AUTHORIZATION'],
  redact: () => '***',
  async run(ctx, args) {
    if (!ctx.facts.isPlaintextAllowed) throw new Pop3Error(PLAINTEXT_DISALLOWED, 'AUTH');
    const login = ctx.state.pendingUser;
    if (login === undefined) throw new Pop3SyntaxError('No user name given, send USER first');
    if (args === '') throw new Pop3SyntaxError('Password required');
    if (!ctx.facts.isUtf8 && !isAscii(args)) {
      throw new Pop3Error('UTF-8 passwords need the UTF8 command first', 'UTF8');
    }
    ctx.state.pendingUser = undefined;
    await ctx.authenticate(login, 'USER', () => ctx.users.verifyPassword(login, args));
  },
});
