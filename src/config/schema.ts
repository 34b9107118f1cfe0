/**
 * Every configuration key, as plain data: its dotted path in the JSON file,
 * its flag (when it has one), its type, its default and what it is for.
 * validate.ts is the one validator that reads this table; load.ts layers the
 * sources; README.md documents the same keys (a test keeps them in step).
 *
 * Environment variable: `MAILDIRD_` + the flag name in upper snake case
 * (`--tls-cert` -> `MAILDIRD_TLS_CERT`), or for keys without a flag the
 * dotted key in upper snake case (`limits.pop3LineLength` ->
 * `MAILDIRD_LIMITS_POP3_LINE_LENGTH`).
 */
import { LOG_LEVELS } from '../log/logger.js';

/** A value as a source holds it: JSON types from the file, strings (and string lists) from env and flags. */
export type RawValue = string | number | boolean | null | readonly RawValue[] | { readonly [key: string]: RawValue };

export type ValueType =
  /** A file or folder; relative paths resolve against the config file's folder (file) or the working folder (env, flags). null: unset. */
  | { readonly type: 'path'; readonly isOptional: boolean }
  | { readonly type: 'boolean' }
  | { readonly type: 'integer'; readonly min: number; readonly max: number }
  /** Octets: an integer, or a number with K, M, G or T (binary multiples: 1K = 1024). */
  | { readonly type: 'size' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  /** `[HOST:]PORT`, a bare PORT binds every address; `false` (or null) turns it off; `isPathAllowed`: a Unix socket PATH (containing `/`). */
  | { readonly type: 'listener'; readonly isPathAllowed: boolean }
  /** Domain names; from env a comma-separated list. */
  | { readonly type: 'domains' }
  | { readonly type: 'hostname' }
  /** A layout template (`%u`, `%n`, `%d`, `%h`, `%%`). */
  | { readonly type: 'layout' }
  /** One line of printable text for a greeting; `forbidden` lists characters it may not hold. */
  | { readonly type: 'text'; readonly forbidden: string }
  /** IP networks in CIDR form (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128); from env a comma-separated list. */
  | { readonly type: 'networks' }
  /** A command line for `/bin/sh -c` (one line, no control characters); null or "" for none. */
  | { readonly type: 'command' };

export interface KeySpec {
  /** Dotted path in the JSON file and in Config. */
  readonly key: string;
  /** Command-line flag (kebab case) for the keys `maildird serve` takes. */
  readonly flag?: string;
  readonly value: ValueType;
  /** The built-in default, validated like any other source (relative paths against the config file's folder). */
  readonly default: RawValue;
  /** How README.md shows the default when the raw default would mislead. */
  readonly defaultText?: string;
  readonly doc: string;
  /** `maildird config print` shows `********` instead of the value (a password or token in a value). */
  readonly isSecret?: boolean;
}

const listener = { type: 'listener', isPathAllowed: false } as const;

export const KEYS = [
  {
    key: 'root',
    flag: 'root',
    value: { type: 'path', isOptional: false },
    default: 'mail',
    defaultText: '`mail` beside the config file (or in the working folder)',
    doc: 'The Maildir tree: one folder per user. It must exist; maildird never creates it.',
  },
  {
    key: 'users',
    flag: 'users',
    value: { type: 'path', isOptional: false },
    default: 'passwd',
    defaultText: '`passwd` beside the config file (or in the working folder)',
    doc: 'The users file, Dovecot passwd-file format. `serve` refuses to start without it.',
  },
  {
    key: 'layout',
    value: { type: 'layout' },
    default: '%u',
    doc: 'A user\'s folder under the root: `%u` user, `%n` local part, `%d` domain, `%h` home field, `%%` a percent sign.',
  },
  {
    key: 'domains',
    flag: 'domain',
    value: { type: 'domains' },
    default: ['localhost'],
    doc: 'Local domains: a bare user name receives mail in each of them. `--domain` may be repeated; env takes a comma-separated list.',
  },
  {
    key: 'listeners.pop3',
    flag: 'pop3',
    value: listener,
    default: '127.0.0.1:1110',
    doc: 'POP3 (RFC 1939) with STLS.',
  },
  { key: 'listeners.pop3s', flag: 'pop3s', value: listener, default: false, doc: 'POP3 over implicit TLS (RFC 8314).' },
  {
    key: 'listeners.smtp',
    flag: 'smtp',
    value: listener,
    default: '127.0.0.1:2525',
    doc: 'Inbound SMTP (RFC 5321) with STARTTLS; AUTH offered, never required.',
  },
  {
    key: 'listeners.submission',
    flag: 'submission',
    value: listener,
    default: false,
    doc: 'Message submission (RFC 6409) with STARTTLS; AUTH required.',
  },
  {
    key: 'listeners.smtps',
    flag: 'smtps',
    value: listener,
    default: false,
    doc: 'Submission over implicit TLS (RFC 8314); AUTH required.',
  },
  {
    key: 'listeners.lmtp',
    flag: 'lmtp',
    value: { type: 'listener', isPathAllowed: true },
    default: false,
    doc: 'LMTP (RFC 2033) for an MTA in front: `[HOST:]PORT` or a Unix socket PATH (with a `/`, e.g. `./lmtp.sock`).',
  },
  {
    key: 'listeners.http',
    flag: 'http',
    value: listener,
    default: false,
    doc: 'HTTP: autoconfig, `/healthz`, `/metrics`.',
  },
  {
    key: 'tls.cert',
    flag: 'tls-cert',
    value: { type: 'path', isOptional: true },
    default: null,
    defaultText: 'none',
    doc: 'PEM certificate chain for STLS/STARTTLS and the implicit-TLS listeners.',
  },
  {
    key: 'tls.key',
    flag: 'tls-key',
    value: { type: 'path', isOptional: true },
    default: null,
    defaultText: 'none',
    doc: 'PEM private key matching `tls.cert`.',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    value: { type: 'enum', values: LOG_LEVELS },
    default: 'info',
    doc: 'Least severe level logged (pino JSON lines on stderr).',
  },
  {
    key: 'logFormat',
    value: { type: 'enum', values: ['auto', 'json', 'pretty'] },
    default: 'auto',
    doc: 'Log lines on stderr: `json` (pino, one object a line), `pretty` (time, level, connection, message, key=value), `auto`: pretty (coloured) when stderr is a terminal, else JSON.',
  },
  {
    key: 'trace',
    value: { type: 'boolean' },
    default: false,
    doc: 'Log protocol commands and replies (secrets masked) at trace level, and lower the log level to trace.',
  },
  {
    key: 'hostname',
    value: { type: 'hostname' },
    default: null,
    defaultText: "the machine's host name",
    doc: 'Name used in greetings and Received headers.',
  },
  {
    key: 'caseInsensitiveUsers',
    value: { type: 'boolean' },
    default: false,
    doc: 'Match logins and recipients ignoring case; the users file spelling names the folder.',
  },
  {
    key: 'aliases',
    value: { type: 'path', isOptional: true },
    default: null,
    defaultText: 'none',
    doc: 'Aliases file for SMTP/LMTP recipients and `deliver -a`, `alias: user, user@domain` lines (aliases(5) form; no programs, files or `:include:`). Re-read when it changes and on SIGHUP; a broken new file is refused and the previous aliases stay.',
  },
  {
    key: 'deletionMode',
    value: { type: 'enum', values: ['trash', 'expunge'] },
    default: 'trash',
    doc: 'What QUIT does with deleted messages: move them to the user\'s Trash (same base name, so the UIDL survives a restore) or unlink them.',
  },
  {
    key: 'infoSeparator',
    value: { type: 'enum', values: [':', ';', '!'] },
    default: ':',
    doc: 'Maildir info separator (`:2,S`); `;` or `!` on file systems that cannot hold `:`.',
  },
  {
    key: 'uidl',
    value: { type: 'enum', values: ['filename', 'dovecot'] },
    default: 'filename',
    doc: 'UIDL source: the file\'s base name, or Dovecot\'s `dovecot-uidlist` where a Maildir has one (keeps UIDLs a Dovecot server gave out).',
  },
  {
    key: 'quota.bytes',
    value: { type: 'size' },
    default: 0,
    defaultText: '0 (unlimited)',
    doc: 'Default storage quota for users whose passwd line has no `userdb_quota_rule=*:storage=N`.',
  },
  {
    key: 'quota.messages',
    value: { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER },
    default: 0,
    defaultText: '0 (unlimited)',
    doc: 'Default message-count quota (`*:messages=N`).',
  },
  {
    key: 'allowPlaintextAuth',
    value: { type: 'boolean' },
    default: false,
    doc: 'Allow plaintext passwords on connections that are neither TLS nor loopback.',
  },
  {
    key: 'apop',
    value: { type: 'boolean' },
    default: false,
    doc: 'Offer POP3 APOP (RFC 1939 section 7, MD5 of a shared secret) to users whose password is stored `{PLAIN}`.',
  },
  {
    key: 'cramMd5',
    value: { type: 'boolean' },
    default: false,
    doc: 'Offer SASL CRAM-MD5 (RFC 2195) in POP3 AUTH and SMTP AUTH to users whose password is stored `{PLAIN}`. Off: clients that prefer it (curl) would fail for hashed passwords.',
  },
  {
    key: 'loginDelaySeconds',
    value: { type: 'integer', min: 0, max: 86400 },
    default: 0,
    doc: 'POP3 LOGIN-DELAY (RFC 2449 section 6.5): the least number of seconds between two logins of one user, announced in CAPA and enforced with `-ERR [LOGIN-DELAY]`; 0 turns it off. Shared by every worker.',
  },
  {
    key: 'limits.pop3LineLength',
    value: { type: 'integer', min: 255, max: 65536 },
    default: 255,
    doc: 'Longest POP3 command line in octets with CRLF (RFC 2449 section 4; no less than 255).',
  },
  {
    key: 'limits.pop3IdleSeconds',
    value: { type: 'integer', min: 1, max: 86400 },
    default: 600,
    doc: 'POP3 idle timeout (RFC 1939 section 3 asks for at least 600).',
  },
  {
    key: 'limits.smtpLineLength',
    value: { type: 'integer', min: 512, max: 65536 },
    default: 512,
    doc: 'Longest SMTP command line in octets with CRLF (RFC 5321 section 4.5.3.1.4; no less than 512).',
  },
  {
    key: 'limits.smtpIdleSeconds',
    value: { type: 'integer', min: 1, max: 86400 },
    default: 300,
    doc: 'SMTP idle timeout (RFC 5321 section 4.5.3.2.7 asks for at least 300).',
  },
  {
    key: 'limits.lineSeconds',
    value: { type: 'integer', min: 1, max: 3600 },
    default: 60,
    doc: 'Once a command line has started, seconds the client has to finish it (POP3 and SMTP): a client sending a byte a minute (slowloris) is cut off although it is never idle.',
  },
  {
    key: 'limits.maxMessageBytes',
    value: { type: 'size' },
    default: '25M',
    defaultText: '25M (26214400)',
    doc: 'Largest message accepted over SMTP/LMTP, in octets (`K`, `M`, `G` suffixes: multiples of 1024).',
  },
  {
    key: 'limits.maxRecipients',
    value: { type: 'integer', min: 1, max: 100000 },
    default: 100,
    doc: 'Recipients per SMTP transaction (RFC 5321 section 4.5.3.1.8: at least 100).',
  },
  {
    key: 'limits.maxConnections',
    value: { type: 'integer', min: 1, max: 1000000 },
    default: 1000,
    doc: 'Open connections per server: POP3 counts pop3 and pop3s together, each SMTP/LMTP listener its own.',
  },
  {
    key: 'limits.maxConnectionsPerIp',
    value: { type: 'integer', min: 1, max: 1000000 },
    default: 20,
    doc: 'Open connections from one client address, per server as above.',
  },
  {
    key: 'limits.shutdownGraceSeconds',
    value: { type: 'integer', min: 0, max: 3600 },
    default: 10,
    doc: 'On SIGTERM/SIGINT, how long sessions may finish their current command before they are closed.',
  },
  {
    key: 'workers',
    flag: 'workers',
    value: { type: 'integer', min: 1, max: 64 },
    default: 1,
    doc: 'Processes serving the listeners (node:cluster). 1: one process, as without the key. N > 1: a primary forks N workers that share the POP3 and SMTP listeners; it runs HTTP itself, keeps the connection limits and the failed-login slowdown for all of them, sums /metrics over them, passes SIGHUP on, and replaces a worker that dies.',
  },
  {
    key: 'greeting.pop3',
    value: { type: 'text', forbidden: '<>' },
    default: 'maildird POP3 server ready',
    doc: 'POP3 greeting text (`+OK <text>`, then the APOP timestamp; so no `<` or `>`).',
  },
  {
    key: 'greeting.smtp',
    value: { type: 'text', forbidden: '' },
    default: 'maildird ESMTP ready',
    doc: 'SMTP banner text (`220 <hostname> ESMTP <text>`).',
  },
  {
    key: 'trashRetentionDays',
    value: { type: 'integer', min: 0, max: 36500 },
    default: 0,
    defaultText: '0 (keep forever)',
    doc: 'Remove messages from each user\'s Trash for good once they have been there this many days (counted from the move to Trash, the file\'s ctime); swept at start and hourly. 0 keeps Trash forever.',
  },
  {
    key: 'filter.command',
    value: { type: 'command' },
    default: null,
    defaultText: 'none',
    doc: 'Pre-delivery filter: a command line run with `/bin/sh -c` for each message received over SMTP or LMTP, the message on stdin. Exit 0 accepts (stdout: header lines to add), 77 rejects (550 5.7.1, first stdout line as the text), 75 defers (451 4.7.1); anything else, a crash, a missing command or the timeout defers (451 4.3.0). See "Pre-delivery filter".',
  },
  {
    key: 'filter.timeoutSeconds',
    value: { type: 'integer', min: 1, max: 3600 },
    default: 60,
    doc: 'How long the filter may take for one message; then it is killed and the message deferred (451 4.3.0).',
  },
  {
    key: 'http.adminNetworks',
    value: { type: 'networks' },
    default: [],
    defaultText: '`[]` (127.0.0.1 and ::1 only)',
    doc: 'Networks (CIDR) besides 127.0.0.1 and ::1 that may read `/metrics` and `/healthz`; others get 403. Autoconfig is public.',
  },
  {
    key: 'clientConfig.outgoing',
    value: listener,
    default: false,
    defaultText: '`false` (this server\'s smtps or submission listener)',
    doc: 'Outgoing server that autoconfig and `client-config` tell clients to use, as HOST:PORT (a bare PORT: `hostname`), e.g. your provider\'s `smtp.example.net:587`.',
  },
  {
    key: 'clientConfig.outgoingSecurity',
    value: { type: 'enum', values: ['auto', 'ssl', 'starttls', 'plain'] },
    default: 'auto',
    doc: 'TLS on `clientConfig.outgoing`: `ssl` (implicit TLS), `starttls`, `plain`; `auto` is `ssl` on port 465, else `starttls`.',
  },
  {
    key: 'clientConfig.outgoingUsername',
    value: { type: 'enum', values: ['address', 'user'] },
    default: 'address',
    doc: 'Login on `clientConfig.outgoing`: the e-mail address the person typed, or their maildird user name.',
  },
] as const satisfies readonly KeySpec[];

/** Flags that `maildird serve` passes to loadConfig, plus `config` (the file itself). */
export type ConfigFlag = 'config' | KeyFlag;
/** The flags of the keys that have one. */
export type KeyFlag = Extract<(typeof KEYS)[number], { readonly flag: string }>['flag'];

/** `--tls-cert` -> `MAILDIRD_TLS_CERT`; `limits.pop3LineLength` -> `MAILDIRD_LIMITS_POP3_LINE_LENGTH`. */
export function envName(spec: Pick<KeySpec, 'key' | 'flag'>): string {
  const name = spec.flag ?? spec.key;
  return `MAILDIRD_${name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[.-]/g, '_')
    .toUpperCase()}`;
}

/** The environment variable naming the config file. */
export const CONFIG_ENV = 'MAILDIRD_CONFIG';
/** The file looked for in the working folder when no `--config` or MAILDIRD_CONFIG is given. */
export const DEFAULT_CONFIG_FILE = 'maildird.json';
