/** Client address helpers shared by the front-ends. */
import { isIPv4 } from 'node:net';

/** The address as the client knows it: `::ffff:192.0.2.1` becomes `192.0.2.1`; undefined becomes ''. */
export function normaliseAddress(address: string | undefined): string {
  if (address === undefined) return '';
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return lower.slice(7);
  return lower;
}

/**
 * True for 127.0.0.0/8 and ::1 (and their IPv4-mapped forms): connections
 * that cannot have crossed a network, where plaintext passwords are safe
 * enough (Dovecot treats them as secured for disable_plaintext_auth).
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  const a = normaliseAddress(address);
  if (a === '::1') return true;
  return isIPv4(a) && a.startsWith('127.');
}
