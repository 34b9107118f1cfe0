/**
 * The trace header fields a final delivery adds (RFC 5321 4.4): one
 * `Return-Path:` with the envelope sender and one `Received:` naming who
 * handed the message over, how (RFC 3848 protocol types ESMTP, ESMTPS,
 * ESMTPA, ESMTPSA, LMTP...), the TLS version, our queue id and the
 * recipient, in the layout Postfix uses:
 *
 *   Received: from helo.example (host.example [192.0.2.1])
 *           by mx.example.org with ESMTPS (TLSv1.3 TLS_AES_256_GCM_SHA384)
 *           id 4F2A9C01B3D7 for <alice@example.org>; Tue, 1 Jul 2025 10:00:00 +0000
 *
 * Every value that reaches a header is cleaned of control characters:
 * smtp-server already refuses them in HELO and addresses, and a second
 * guard here keeps header injection impossible whatever the caller passes.
 */

export interface TraceInfo {
  /** MAIL FROM address, '' for the null sender. */
  readonly mailFrom: string;
  /** The HELO/EHLO/LHLO argument; undefined for `maildird deliver`. */
  readonly helo?: string | undefined;
  /** Reverse-resolved name of the client, if any. */
  readonly clientHostname?: string | undefined;
  /** Client IP; undefined for local delivery. */
  readonly remoteAddress?: string | undefined;
  /** Our name (the `by` clause). */
  readonly hostname: string;
  /** RFC 3848 `with` value: ESMTP, ESMTPSA, LMTP, SMTP, or `local` for `maildird deliver`. */
  readonly protocol: string;
  /** TLS protocol and cipher, when the session was encrypted. */
  readonly tls?: { readonly version: string; readonly cipher: string } | undefined;
  readonly queueId: string;
  readonly date: Date;
}

const CONTROL = /[\x00-\x1f\x7f]/g;

function clean(value: string): string {
  return value.replace(CONTROL, '');
}

/**
 * `Return-Path:` and `Received:` for one recipient, CRLF line ends, ending
 * with a line end. `returnPath: false` leaves out the Return-Path (the
 * message already has one from the MTA that handed it to `maildird deliver`).
 */
export function traceHeaders(info: TraceInfo, recipient: string | undefined, options: { readonly returnPath?: boolean } = {}): string {
  const lines = options.returnPath === false ? [] : [`Return-Path: <${clean(info.mailFrom)}>`];
  let received = 'Received: ';
  if (info.helo !== undefined || info.remoteAddress !== undefined) {
    const helo = clean(info.helo ?? 'unknown');
    const literal = info.remoteAddress === undefined ? '' : `[${clean(info.remoteAddress)}]`;
    const rdns = info.clientHostname !== undefined && !info.clientHostname.startsWith('[') ? clean(info.clientHostname) : '';
    const origin = [rdns, literal].filter((s) => s !== '').join(' ');
    received += `from ${helo}${origin === '' ? '' : ` (${origin})`}\r\n\t`;
  }
  received += `by ${clean(info.hostname)} with ${clean(info.protocol)}`;
  if (info.tls !== undefined) received += ` (${clean(info.tls.version)} ${clean(info.tls.cipher)})`;
  received += `\r\n\tid ${clean(info.queueId)}`;
  if (recipient !== undefined) received += ` for <${clean(recipient)}>`;
  received += `; ${rfc5322Date(info.date)}`;
  lines.push(received);
  return `${lines.join('\r\n')}\r\n`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 3.3 date-time in UTC: `Tue, 1 Jul 2025 10:00:00 +0000`. */
export function rfc5322Date(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}
