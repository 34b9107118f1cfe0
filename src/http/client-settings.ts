/**
 * What a mail client needs to set up an account on this server: the
 * incoming POP3 endpoints, the outgoing SMTP endpoint, and the login. One
 * model behind Thunderbird's autoconfig, Outlook's autodiscover and
 * `maildird client-config`, so the three never disagree.
 *
 * Endpoints come from the configuration: clients connect to `hostname`
 * (the name the certificate is for) on each listener's port. Incoming:
 * POP3S first (RFC 8314 section 3.3 prefers implicit TLS), then POP3 with
 * STLS (or plain when no certificate is configured). Outgoing: the
 * configured server (`clientConfig.outgoing`, e.g. the user's provider),
 * else this server's SMTPS, then submission (RFC 6409) listener.
 */
import type { Authenticator } from '../auth/authenticator.js';
import type { Config, ListenerName } from '../config/config.js';

/** How a client secures the connection: Thunderbird's socketType values. */
export type SocketType = 'SSL' | 'STARTTLS' | 'plain';

/** Which login a client uses on an endpoint. */
export type LoginKind = 'user' | 'address';

export interface Endpoint {
  readonly protocol: 'pop3' | 'smtp';
  readonly hostname: string;
  readonly port: number;
  readonly socketType: SocketType;
  /** `user`: the canonical maildird user; `address`: the address the person typed. */
  readonly login: LoginKind;
}

export interface ClientEndpoints {
  /** Local domains: the ones these settings are for. */
  readonly domains: readonly string[];
  readonly hostname: string;
  readonly incoming: readonly Endpoint[];
  readonly outgoing: readonly Endpoint[];
}

/** Settings for one address, logins resolved. */
export interface AccountSettings {
  readonly address: string | undefined;
  /** The address's domain, or the first local domain when no address was given. */
  readonly domain: string;
  readonly hostname: string;
  readonly domains: readonly string[];
  readonly incoming: readonly ResolvedEndpoint[];
  readonly outgoing: readonly ResolvedEndpoint[];
}

export interface ResolvedEndpoint extends Endpoint {
  /** The login to type, or undefined when no address was given (a template says `%EMAILADDRESS%`). */
  readonly username: string | undefined;
}

/** Longest address accepted (RFC 5321 section 4.5.3.1.3: a path holds at most 256 octets, 254 between the brackets). */
const MAX_ADDRESS_LENGTH = 254;

/**
 * The endpoints this configuration advertises. `boundPorts` gives the
 * ports actually bound (a listener configured with port 0 gets a free one).
 */
export function clientEndpoints(config: Config, boundPorts: Partial<Record<ListenerName, number>> = {}): ClientEndpoints {
  const hostname = config.hostname.replace(/\.$/, '');
  const hasTls = config.tls.cert !== undefined;
  const portOf = (name: ListenerName): number | undefined => {
    const address = config.listeners[name];
    if (address === false || address.kind !== 'tcp') return undefined;
    return boundPorts[name] ?? (address.port === 0 ? undefined : address.port);
  };
  const local = (name: ListenerName, protocol: Endpoint['protocol'], socketType: SocketType): Endpoint[] => {
    const port = portOf(name);
    return port === undefined ? [] : [{ protocol, hostname, port, socketType, login: 'user' }];
  };
  const incoming = [...local('pop3s', 'pop3', 'SSL'), ...local('pop3', 'pop3', hasTls ? 'STARTTLS' : 'plain')];

  let outgoing: Endpoint[];
  const configured = config.clientConfig.outgoing;
  if (configured !== false && configured.kind === 'tcp') {
    const security = config.clientConfig.outgoingSecurity;
    const socketType: SocketType =
      security === 'ssl' || (security === 'auto' && configured.port === 465) ? 'SSL' : security === 'plain' ? 'plain' : 'STARTTLS';
    outgoing = [
      {
        protocol: 'smtp',
        hostname: (configured.host ?? hostname).replace(/\.$/, ''),
        port: configured.port,
        socketType,
        login: config.clientConfig.outgoingUsername,
      },
    ];
  } else {
    outgoing = [...local('smtps', 'smtp', 'SSL'), ...local('submission', 'smtp', hasTls ? 'STARTTLS' : 'plain')];
  }
  return { domains: config.domains, hostname, incoming, outgoing };
}

export type SettingsResult =
  | { readonly ok: true; readonly settings: AccountSettings }
  | { readonly ok: false; readonly reason: 'invalid-address' | 'foreign-domain' };

/**
 * Settings for `address` (undefined: a template for any address of the
 * first local domain). The login is the canonical user name the user
 * database gives for the address; for an address it does not know, the
 * address itself (every login also accepts the full address, DESIGN
 * "Users"). That says no more about who exists than SMTP's RCPT already does.
 */
export function settingsFor(endpoints: ClientEndpoints, users: Authenticator, address: string | undefined): SettingsResult {
  let domain = endpoints.domains[0] ?? endpoints.hostname;
  let canonical: string | undefined;
  if (address !== undefined) {
    if (!isAddress(address)) return { ok: false, reason: 'invalid-address' };
    domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase().replace(/\.$/, '');
    if (!endpoints.domains.includes(domain)) return { ok: false, reason: 'foreign-domain' };
    canonical = users.lookup(address)?.name ?? address;
  }
  const resolve = (endpoint: Endpoint): ResolvedEndpoint => ({
    ...endpoint,
    username: address === undefined ? undefined : endpoint.login === 'user' ? canonical : address,
  });
  return {
    ok: true,
    settings: {
      address,
      domain,
      hostname: endpoints.hostname,
      domains: endpoints.domains,
      incoming: endpoints.incoming.map(resolve),
      outgoing: endpoints.outgoing.map(resolve),
    },
  };
}

/** local@domain: printable ASCII or UTF-8 without spaces, controls or angle brackets; one `@` before a dotted domain. */
export function isAddress(text: string): boolean {
  if (text.length === 0 || text.length > MAX_ADDRESS_LENGTH) return false;
  if (/[\x00-\x20\x7f<>"\\,;:()[\]]/.test(text)) return false;
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return false;
  const domain = text.slice(at + 1);
  return /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(domain) && domain.length <= 253;
}
