/**
 * `maildird client-config ADDRESS [--config FILE] [flags]`: the settings a
 * person types into a mail client, the same ones autoconfig and
 * autodiscover hand out (src/http/client-settings.ts): POP3 and SMTP
 * servers in order of preference, ports, security, and the login (the
 * canonical user name from the users file).
 */
import type { Argv, CommandModule } from 'yargs';
import { UserDatabase } from '../../auth/user-db.js';
import { loadConfig } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import { clientEndpoints, settingsFor, type AccountSettings, type ResolvedEndpoint } from '../../http/client-settings.js';
import { runContextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { writeOut } from '../io.js';
import { configOptions, flagValues, type ConfigArgs } from './config-options.js';

/** sysexits.h EX_NOUSER. */
const EX_NOUSER = 67;

type ClientConfigArgs = ConfigArgs & { readonly address?: string };

export const clientConfigCommand: CommandModule<object, ClientConfigArgs> = {
  command: 'client-config <address>',
  describe: 'Print the mail client settings for an address (what autoconfig serves)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('address', { type: 'string', describe: 'the e-mail address, e.g. alice@example.org' })
      .options(configOptions('serve'))
      .example('$0 client-config alice@example.org --config /etc/maildird/maildird.json', 'servers, ports, security and login') as unknown as Argv<ClientConfigArgs>,
  handler: async (argv) => {
    const { io } = runContextOf(argv);
    const address = (argv.address ?? '').trim();
    const config = await loadConfig({ flags: flagValues(argv), env: io.env, cwd: io.cwd });
    const users = await UserDatabase.load({ file: config.users, domains: config.domains, caseInsensitive: config.caseInsensitiveUsers });
    await users.close();
    const result = settingsFor(clientEndpoints(config), users, address);
    if (!result.ok) {
      const why =
        result.reason === 'invalid-address'
          ? `${JSON.stringify(address)} is not an e-mail address`
          : `${address}: not a domain of this server (local domains: ${config.domains.join(', ')})`;
      throw new ConfigError(why, { key: 'address', exitCode: EXIT.dataError });
    }
    if (users.lookup(address) === undefined) {
      throw new ConfigError(`${address}: no such user in ${config.users}`, { key: 'address', exitCode: EX_NOUSER });
    }
    await writeOut(io.stdout, `${clientConfigText(result.settings).join('\n')}\n`);
  },
};

/** The settings as lines of text for a person. */
export function clientConfigText(settings: AccountSettings): string[] {
  const lines = [`Mail client settings for ${settings.address ?? settings.domain}`, ''];
  lines.push('Incoming mail (POP3), first choice first:');
  if (settings.incoming.length === 0) lines.push('  none: no pop3 or pop3s listener with a fixed port is configured');
  for (const endpoint of settings.incoming) lines.push(...endpointLines(endpoint));
  lines.push('', 'Outgoing mail (SMTP), first choice first:');
  if (settings.outgoing.length === 0) lines.push('  none: set clientConfig.outgoing, or a submission or smtps listener');
  for (const endpoint of settings.outgoing) lines.push(...endpointLines(endpoint));
  lines.push('', 'Authentication: normal password (the account\'s password; maildird takes it inside TLS, or on loopback).');
  return lines;
}

const SECURITY: Readonly<Record<ResolvedEndpoint['socketType'], string>> = {
  SSL: 'SSL/TLS (implicit TLS)',
  STARTTLS: 'STARTTLS',
  plain: 'none (no certificate is configured)',
};

function endpointLines(endpoint: ResolvedEndpoint): string[] {
  return [
    `  server ${endpoint.hostname}, port ${endpoint.port}`,
    `    security:  ${SECURITY[endpoint.socketType]}`,
    `    user name: ${endpoint.username ?? '(the e-mail address)'}`,
  ];
}
