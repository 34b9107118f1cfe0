/**
 * APOP name digest, RFC 1939 section 7: md5(timestamp + secret) as 32 hex
 * digits. Offered only when enabled and some user has a PLAIN password
 * (the secret must be known in clear); the greeting then carries the
 * timestamp. Not a plaintext mechanism, so allowed without TLS. The digest
 * is masked in the trace.
 */
import { defineCommand } from '../command.js';
import { isAscii, Pop3SyntaxError, words } from '../args.js';
import { Pop3Error } from '../../errors.js';

const DIGEST = /^[0-9a-fA-F]{32}$/;

export const apop = defineCommand({
  verb: 'APOP',
  states: ['AUTHORIZATION'],
  redact: (args) => `${args.split(' ')[0] ?? ''} ***`,
  async run(ctx, args) {
    const challenge = ctx.facts.apopChallenge;
    if (challenge === undefined) throw new Pop3Error('APOP is not available on this server');
    const list = words(args);
    const [name, digest] = list;
    if (name === undefined || digest === undefined) throw new Pop3SyntaxError('APOP needs a name and a digest');
    if (list.length > 2) throw new Pop3SyntaxError('Too many arguments');
    if (!DIGEST.test(digest)) throw new Pop3SyntaxError('Invalid APOP digest');
    if (!ctx.facts.isUtf8 && !isAscii(name)) {
      throw new Pop3Error('UTF-8 user names need the UTF8 command first', 'UTF8');
    }
    ctx.state.pendingUser = undefined;
    await ctx.authenticate(name, 'APOP', () => ctx.users.verifyDigest('APOP', name, challenge, digest.toLowerCase()));
  },
});
