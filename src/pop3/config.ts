/**
 * The POP3 front-end's settings, resolved once from Pop3ServerOptions
 * (defaults filled in, frozen) and shared by every session (STYLE.md 9).
 * Limits carry the RFC defaults.
 */

export interface Pop3Limits {
  /** Longest command line in octets, CRLF included (RFC 2449 section 4: 255). */
  readonly maxLineLength: number;
  /** Longest SASL response line (RFC 5034 section 4 lets responses exceed command lines). */
  readonly maxSaslLineLength: number;
  /** Idle time between complete commands (RFC 1939 section 3: at least 10 minutes). */
  readonly idleTimeoutMs: number;
  /** Deadline for finishing a line once started (a byte-a-minute client is cut off). */
  readonly lineTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** Open connections over every listener of the server; 0: unlimited. */
  readonly maxConnections: number;
  /** Open connections from one address; 0: unlimited. */
  readonly maxConnectionsPerIp: number;
  /** Unknown, malformed or wrong-state commands before the connection is closed. */
  readonly maxBadCommands: number;
  /** Failed authentications before the connection is closed. */
  readonly maxAuthFailures: number;
  /** On close(), how long sessions may finish their current command. */
  readonly closeTimeoutMs: number;
  /** Queued output above which streaming waits for the client. */
  readonly writeHighWaterMark: number;
  /** Messages up to this wire size are read whole before `+OK` and sent in the reply batch. */
  readonly smallMessageBytes: number;
  /** RETR read-ahead (read-ahead.ts): most messages held or in flight; 0 turns it off. */
  readonly readAheadMessages: number;
  /** RETR read-ahead: most wire octets held or in flight. */
  readonly readAheadBytes: number;
  /** How long a closing connection waits for the client's FIN. */
  readonly lingerMs: number;
}

export const DEFAULT_POP3_LIMITS: Pop3Limits = Object.freeze({
  maxLineLength: 255,
  maxSaslLineLength: 8192,
  idleTimeoutMs: 10 * 60_000,
  lineTimeoutMs: 60_000,
  handshakeTimeoutMs: 30_000,
  maxConnections: 1000,
  maxConnectionsPerIp: 20,
  maxBadCommands: 10,
  maxAuthFailures: 3,
  closeTimeoutMs: 10_000,
  writeHighWaterMark: 256 * 1024,
  smallMessageBytes: 128 * 1024,
  readAheadMessages: 16,
  readAheadBytes: 2 * 1024 * 1024,
  lingerMs: 2_000,
});

export interface Pop3SessionConfig {
  /** In the greeting and the APOP timestamp. */
  readonly hostname: string;
  /** Greeting text after `+OK ` (no `<` or `>`: the APOP timestamp follows it). */
  readonly greeting: string;
  /** RFC 2449 IMPLEMENTATION capability. */
  readonly implementation: string;
  /** Offer APOP (timestamp in the greeting) when some user has a PLAIN password. */
  readonly isApopEnabled: boolean;
  /** Offer SASL CRAM-MD5 (RFC 2195) when some user has a PLAIN password. */
  readonly isCramMd5Enabled: boolean;
  /** Accept plaintext passwords on unencrypted non-loopback connections (Dovecot's disable_plaintext_auth = no). */
  readonly allowPlaintextAuth: boolean;
  /**
   * Count loopback connections as secure for plaintext passwords (default
   * true, as Dovecot does). Off: only TLS (or allowPlaintextAuth) will do.
   */
  readonly isLoopbackSecure: boolean;
  /** Trace commands and replies at debug level (secrets masked). */
  readonly isTraceEnabled: boolean;
  /** RFC 2449 LOGIN-DELAY in seconds; 0: none. */
  readonly loginDelaySeconds: number;
  /** TLS material is configured: STLS is offered on plain connections. */
  readonly isTlsConfigured: boolean;
  /** SASL mechanisms on offer (RFC 5034), in preference order, before per-connection filtering. */
  readonly saslMechanisms: readonly string[];
  readonly limits: Pop3Limits;
}
