/**
 * USER name, RFC 1939 section 7. The answer never says whether the user
 * exists (PASS fails the same way for both). Refused on unencrypted
 * non-loopback connections unless plaintext auth is allowed (RFC 2595
 * section 2.1, Dovecot's disable_plaintext_auth).
 */
import { defineCommand } from '../command.js';
import { isAscii, Pop3SyntaxError } from '../args.js';
import { Pop3Error } from '../../errors.js';

export const PLAINTEXT_DISALLOWED = 'Plaintext authentication disallowed on non-secure (SSL/TLS) connections';

export const user = defineCommand({
  verb: 'USER',
  states: ['AUTHORIZATION'],
  capability: ({ facts }) => (facts.isPlaintextAllowed ? 'USER' : undefined),
  run(ctx, args) {
    if (!ctx.facts.isPlaintextAllowed) throw new Pop3Error(PLAINTEXT_DISALLOWED, 'AUTH');
    const name = args.trim();
    if (name === '') throw new Pop3SyntaxError('User name required');
    if (!ctx.facts.isUtf8 && !isAscii(name)) {
      throw new Pop3Error('UTF-8 user names need the UTF8 command first', 'UTF8');
    }
    ctx.state.pendingUser = name;
    ctx.ok();
  },
});
