/**
 * The CAPA list (RFC 2449 section 5), in one place: the lines contributed
 * by commands in the table (TOP, UIDL, USER, SASL, STLS, UTF8), then the
 * session-wide ones that are not commands. Only what is on for this
 * session is listed.
 */
import type { CapabilityView, Pop3Command } from './command.js';
import type { StateName } from './state.js';

export function capabilityLines(commands: readonly Pop3Command<StateName>[], view: CapabilityView): string[] {
  const lines: string[] = [];
  for (const command of commands) {
    const line = command.capability?.(view);
    if (line !== undefined) lines.push(line);
  }
  // RFC 2449 section 6.4: [IN-USE] and [LOGIN-DELAY]; RFC 3206 section 6: [SYS/*] and [AUTH].
  lines.push('RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING');
  // Section 6.7: maildird never removes mail left on the server.
  lines.push('EXPIRE NEVER');
  if (view.config.loginDelaySeconds > 0) lines.push(`LOGIN-DELAY ${view.config.loginDelaySeconds}`);
  lines.push(`IMPLEMENTATION ${view.config.implementation}`);
  return lines;
}
