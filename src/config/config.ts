/**
 * The typed configuration every part of maildird takes. It is built once by
 * `loadConfig` (load.ts) from defaults < file < env < flags, validated once,
 * deeply frozen, and passed down; nothing reads settings from anywhere else
 * (STYLE.md 9). Every key is listed with its default in schema.ts and README.md.
 */
import type { LogLevel } from '../log/logger.js';

/** The listeners maildird knows, one per socket a front-end may open. */
export const LISTENER_NAMES = ['pop3', 'pop3s', 'smtp', 'submission', 'smtps', 'lmtp', 'http'] as const;
export type ListenerName = (typeof LISTENER_NAMES)[number];

/** Listeners that speak TLS from the first byte, so they need `tls.cert` and `tls.key`. */
export const IMPLICIT_TLS_LISTENERS: readonly ListenerName[] = ['pop3s', 'smtps'];

/** A TCP listener. `host` undefined binds every address (a bare PORT). Port 0 picks a free port. */
export interface TcpAddress {
  readonly kind: 'tcp';
  readonly host: string | undefined;
  readonly port: number;
}

/** A Unix domain socket listener (LMTP only), as an absolute path. */
export interface UnixAddress {
  readonly kind: 'unix';
  readonly path: string;
}

export type ListenAddress = TcpAddress | UnixAddress;

export type DeletionMode = 'trash' | 'expunge';
/** The Maildir info separator (DESIGN "Seen"): `:` by default; `;` or `!` where `:` cannot be in a file name. */
export type InfoSeparator = ':' | ';' | '!';
/** Where UIDLs come from: the file's base name, or Dovecot's `dovecot-uidlist` when a tree has one. */
export type UidlMode = 'filename' | 'dovecot';

export interface Limits {
  /** Longest POP3 command line in octets, CRLF included (RFC 2449 section 4: 255). */
  readonly pop3LineLength: number;
  /** POP3 idle timeout in seconds (RFC 1939 section 3: at least 10 minutes). */
  readonly pop3IdleSeconds: number;
  /** Longest SMTP command line in octets, CRLF included (RFC 5321 section 4.5.3.1.4: 512). */
  readonly smtpLineLength: number;
  /** SMTP idle timeout in seconds (RFC 5321 section 4.5.3.2.7: 5 minutes). */
  readonly smtpIdleSeconds: number;
  /** Seconds to finish a command line once started (slowloris defence), POP3 and SMTP. */
  readonly lineSeconds: number;
  /** Largest message accepted, in octets. */
  readonly maxMessageBytes: number;
  /** Recipients per SMTP transaction (RFC 5321 section 4.5.3.1.8: at least 100). */
  readonly maxRecipients: number;
  /** Open connections per server (POP3: pop3 + pop3s; each SMTP/LMTP listener its own). */
  readonly maxConnections: number;
  /** Open connections from one client address, per server. */
  readonly maxConnectionsPerIp: number;
  /** On SIGTERM/SIGINT, how long sessions may finish their current command before they are closed. */
  readonly shutdownGraceSeconds: number;
}

export interface Config {
  /** The configuration file that was read (absolute), or undefined when none was. */
  readonly configFile: string | undefined;
  /** Absolute path of the Maildir tree. */
  readonly root: string;
  /** Absolute path of the users file (Dovecot passwd-file format). */
  readonly users: string;
  /** Absolute path of the aliases file (`alias: user, ...`), or undefined for none. */
  readonly aliases: string | undefined;
  /** Folder of a user under the root: `%u`, `%d/%n`, `%h`, ... (DESIGN "Root and layout"). */
  readonly layout: string;
  /** Local domains, lower case: a bare user name is valid in each of them. */
  readonly domains: readonly string[];
  /** Each listener's address, or false when it is off. */
  readonly listeners: Readonly<Record<ListenerName, ListenAddress | false>>;
  /** Certificate chain and private key (PEM files, absolute paths) for STLS/STARTTLS and the implicit-TLS ports. */
  readonly tls: { readonly cert: string | undefined; readonly key: string | undefined };
  readonly logLevel: LogLevel;
  /** JSON lines, pretty lines, or pretty on a terminal (`auto`). */
  readonly logFormat: 'auto' | 'json' | 'pretty';
  /** Log protocol commands and replies (secrets masked) at trace level; lowers the log level to trace. */
  readonly trace: boolean;
  /** Name used in greetings and Received headers. */
  readonly hostname: string;
  readonly caseInsensitiveUsers: boolean;
  readonly deletionMode: DeletionMode;
  readonly infoSeparator: InfoSeparator;
  readonly uidl: UidlMode;
  /** Default quota for users whose passwd line has no `userdb_quota_rule`; 0 means unlimited. */
  readonly quota: { readonly bytes: number; readonly messages: number };
  /** Allow plaintext passwords (USER/PASS, AUTH PLAIN/LOGIN) on connections that are neither TLS nor loopback. */
  readonly allowPlaintextAuth: boolean;
  /** Offer APOP to users with `{PLAIN}` passwords. */
  readonly apop: boolean;
  /** Offer SASL CRAM-MD5 (POP3 and SMTP) to users with `{PLAIN}` passwords. */
  readonly cramMd5: boolean;
  /** POP3 LOGIN-DELAY seconds; 0 is off. */
  readonly loginDelaySeconds: number;
  readonly limits: Limits;
  /** Processes serving the listeners: 1 is one process; N > 1 a node:cluster primary and N workers (src/cli/cluster). */
  readonly workers: number;
  /** Greeting texts: POP3 `+OK <text>`, SMTP `220 <hostname> ESMTP <text>`. */
  readonly greeting: { readonly pop3: string; readonly smtp: string };
  /** Trash messages older than this many days are purged by the trash sweeper; 0 keeps them forever. */
  readonly trashRetentionDays: number;
  /** The pre-delivery filter (src/smtp/filter.ts): a `/bin/sh -c` command line, or undefined for none. */
  readonly filter: { readonly command: string | undefined; readonly timeoutSeconds: number };
  readonly http: {
    /** CIDR networks (`10.0.0.0/8`) besides 127.0.0.1 and ::1 that may read /metrics and /healthz. */
    readonly adminNetworks: readonly string[];
  };
  /** What autoconfig, autodiscover and `maildird client-config` tell mail clients. */
  readonly clientConfig: {
    /** The outgoing server to advertise (the user's provider), or false for this server's smtps/submission listener. */
    readonly outgoing: ListenAddress | false;
    readonly outgoingSecurity: OutgoingSecurity;
    /** Login on the configured outgoing server: the address typed, or the maildird user name. */
    readonly outgoingUsername: 'address' | 'user';
  };
}

/** TLS on an advertised outgoing server; `auto` is `ssl` on port 465, else `starttls`. */
export type OutgoingSecurity = 'auto' | 'ssl' | 'starttls' | 'plain';

/** Host and port as people write them: `127.0.0.1:1110`, `[::1]:1110`, `*:1110` for all addresses, or the socket path. */
export function formatAddress(address: ListenAddress): string {
  if (address.kind === 'unix') return address.path;
  const host = address.host === undefined ? '*' : address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}
