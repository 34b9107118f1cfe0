/**
 * THE command table (STYLE.md 1): every verb the POP3 front-end knows, in
 * CAPA order. The session dispatches through COMMAND_TABLE only; CAPA is
 * derived from COMMANDS (capabilities.ts).
 */
import type { Pop3Command } from '../command.js';
import type { StateName } from '../state.js';
import { capa } from './capa.js';
import { user } from './user.js';
import { pass } from './pass.js';
import { apop } from './apop.js';
import { auth } from './auth.js';
import { stls } from './stls.js';
import { utf8 } from './utf8.js';
import { stat } from './stat.js';
import { list } from './list.js';
import { retr } from './retr.js';
import { dele } from './dele.js';
import { noop } from './noop.js';
import { rset } from './rset.js';
import { top } from './top.js';
import { uidl } from './uidl.js';
import { quit } from './quit.js';

/**
 * Forget a command's narrowed states for the table. Sound because the
 * session runs a command only after checking `states` against the current
 * state: the one place that justifies the cast.
 */
function entry<S extends StateName>(command: Pop3Command<S>): Pop3Command<StateName> {
  return command as unknown as Pop3Command<StateName>;
}

export const COMMANDS: readonly Pop3Command<StateName>[] = Object.freeze([
  entry(capa),
  entry(top),
  entry(uidl),
  entry(user),
  entry(pass),
  entry(apop),
  entry(auth),
  entry(stls),
  entry(utf8),
  entry(stat),
  entry(list),
  entry(retr),
  entry(dele),
  entry(noop),
  entry(rset),
  entry(quit),
]);

export const COMMAND_TABLE: ReadonlyMap<string, Pop3Command<StateName>> = new Map(
  COMMANDS.map((command) => [command.verb, command]),
);
