/**
 * Every `maildird` command, as an array of yargs command modules (yargs
 * under ESM has no commandDir()). Flags are a contract: see README.md.
 */
import type { CommandModule } from 'yargs';
import { checkCommand } from './commands/check.js';
import { clientConfigCommand } from './commands/client-config.js';
import { configCommand } from './commands/config.js';
import { deliverCommand } from './commands/deliver.js';
import { serveCommand } from './commands/serve.js';
import { userCommand } from './commands/user.js';

export const commands = [serveCommand, userCommand, checkCommand, configCommand, clientConfigCommand, deliverCommand] as readonly CommandModule<object, object>[];
