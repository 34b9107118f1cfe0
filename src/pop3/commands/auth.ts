/**
 * AUTH mechanism [initial-response], RFC 5034 (POP3 SASL). The exchange
 * itself (PLAIN, LOGIN, CRAM-MD5, base64 and `*` framing) is src/auth/sasl,
 * shared with SMTP; this module frames it for POP3: `+ <challenge>` lines,
 * one base64 response line each, `-ERR` for a cancel (section 4) or bad
 * base64, `-ERR [AUTH]` (RFC 3206) for failed credentials.
 *
 * PLAIN and LOGIN carry the password, so they are offered (and accepted)
 * only where plaintext passwords are (TLS, loopback, or allowed by config).
 * AUTH without a mechanism lists the mechanisms, as clients of the older
 * RFC 1734 (and Outlook) expect, like Dovecot does.
 */
import { defineCommand, type SessionFacts } from '../command.js';
import { Pop3SyntaxError, words } from '../args.js';
import type { Pop3SessionConfig } from '../config.js';
import { Pop3Error } from '../../errors.js';
import type { Authenticator } from '../../auth/authenticator.js';
import { createSaslExchange, parseMechanismName, saslMechanisms, verifySaslCredentials } from '../../auth/sasl/mechanisms.js';
import type { SaslMechanismName } from '../../auth/sasl/exchange.js';
import { PLAINTEXT_DISALLOWED } from './user.js';

/** The mechanisms on offer on this connection, in the configured order. */
export function offeredMechanisms(facts: SessionFacts, config: Pop3SessionConfig, users: Authenticator): SaslMechanismName[] {
  const possible = saslMechanisms({
    secure: facts.isPlaintextAllowed,
    allowPlaintext: facts.isPlaintextAllowed,
    hasSharedSecrets: users.hasSharedSecrets(),
    cramMd5: config.isCramMd5Enabled,
  });
  return config.saslMechanisms.flatMap((name) => {
    const mechanism = parseMechanismName(name);
    return mechanism !== undefined && possible.includes(mechanism) ? [mechanism] : [];
  });
}

export const auth = defineCommand({
  verb: 'AUTH',
  states: ['AUTHORIZATION'],
  capability: ({ facts, config, users }) => {
    const offered = offeredMechanisms(facts, config, users);
    return offered.length === 0 ? undefined : `SASL ${offered.join(' ')}`;
  },
  redact: (args) => {
    const [mechanism, ...rest] = args.split(' ');
    return rest.length === 0 ? (mechanism ?? '') : `${mechanism ?? ''} ***`;
  },
  async run(ctx, args) {
    const list = words(args);
    const offered = offeredMechanisms(ctx.facts, ctx.config, ctx.users);
    if (list.length === 0) {
      await ctx.multiline('Authentication mechanisms follow', offered);
      return;
    }
    if (list.length > 2) throw new Pop3SyntaxError('Too many arguments');
    const mechanism = parseMechanismName(list[0] as string);
    if (mechanism === undefined || !ctx.config.saslMechanisms.includes(mechanism)) {
      throw new Pop3Error('Unsupported authentication mechanism');
    }
    if (!offered.includes(mechanism)) {
      if (mechanism === 'CRAM-MD5') throw new Pop3Error('Unsupported authentication mechanism');
      throw new Pop3Error(PLAINTEXT_DISALLOWED, 'AUTH');
    }
    const exchange = createSaslExchange(mechanism, { hostname: ctx.config.hostname });
    let step = exchange.start(list[1]);
    while (step.kind === 'challenge') {
      ctx.challenge(step.challenge);
      const line = await ctx.readResponse();
      if (line === undefined) return; // the connection ended or timed out; the session closes
      step = exchange.next(line);
    }
    const how = `SASL ${mechanism}`;
    if (step.kind === 'error') {
      ctx.log.debug({ mechanism, error: step.error, detail: step.detail }, 'SASL exchange ended');
      switch (step.error) {
        case 'cancelled':
          throw new Pop3Error('Authentication cancelled');
        case 'bad-base64':
          throw new Pop3SyntaxError('Invalid base64 data in response');
        case 'malformed':
        case 'authzid-denied':
        case 'finished':
          await ctx.authFailed('', how);
          return;
      }
    }
    const credentials = step.credentials;
    await ctx.authenticate(step.login, how, () => verifySaslCredentials(ctx.users, credentials));
  },
});
