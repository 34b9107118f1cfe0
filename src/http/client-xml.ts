/**
 * The XML documents mail clients fetch to configure themselves, from one
 * AccountSettings:
 *
 * - Thunderbird's autoconfig, format config-v1.1
 *   (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat):
 *   `clientConfig/emailProvider` with `domain`, `displayName`,
 *   `displayShortName`, then `incomingServer type="pop3"` and
 *   `outgoingServer type="smtp"` in order of preference, each with
 *   `hostname`, `port`, `socketType` (SSL | STARTTLS | plain), `username`
 *   and `authentication` (`password-cleartext`: USER/PASS or AUTH PLAIN,
 *   sent only inside TLS or over loopback).
 * - Outlook's POX autodiscover response (Exchange "Autodiscover (POX)"
 *   reference, response schema
 *   http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a):
 *   `Autodiscover/Response/Account` with `AccountType` email, `Action`
 *   settings and one `Protocol` per `Type` (POP3, SMTP), children in the
 *   schema's order: Type, Server, Port, LoginName, DomainRequired, SPA,
 *   SSL, AuthRequired, then UsePOPAuth and SMTPLast for SMTP. `Encryption`
 *   (None | SSL | TLS, which Outlook 2010 and later prefer over `SSL`)
 *   follows SSL: SSL's on/off alone cannot tell STARTTLS from implicit TLS.
 *
 * Every text and attribute value goes through escapeXml.
 */
import type { AccountSettings, ResolvedEndpoint } from './client-settings.js';

export const AUTODISCOVER_RESPONSE_NS = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
export const OUTLOOK_RESPONSE_SCHEMA = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

/** Escape the five XML special characters; drop characters XML 1.0 cannot hold at all. */
export function escapeXml(text: string): string {
  return text
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function element(name: string, text: string, indent: string): string {
  return `${indent}<${name}>${escapeXml(text)}</${name}>`;
}

/** Thunderbird's config-v1.1 document. Without an address, logins are the `%EMAILADDRESS%` placeholder. */
export function autoconfigXml(settings: AccountSettings, displayName: string): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<clientConfig version="1.1">',
    `  <emailProvider id="${escapeXml(settings.domain)}">`,
    ...settings.domains.map((domain) => element('domain', domain, '    ')),
    element('displayName', displayName, '    '),
    element('displayShortName', settings.domain, '    '),
  ];
  for (const endpoint of settings.incoming) lines.push(...thunderbirdServer('incomingServer', 'pop3', endpoint));
  for (const endpoint of settings.outgoing) lines.push(...thunderbirdServer('outgoingServer', 'smtp', endpoint));
  lines.push('  </emailProvider>', '</clientConfig>', '');
  return lines.join('\n');
}

function thunderbirdServer(tag: string, type: string, endpoint: ResolvedEndpoint): string[] {
  const i = '      ';
  return [
    `    <${tag} type="${type}">`,
    element('hostname', endpoint.hostname, i),
    element('port', String(endpoint.port), i),
    element('socketType', endpoint.socketType, i),
    // A placeholder Thunderbird fills in (config-v1.1 "Placeholders"): the full address is a valid login for every user.
    element('username', endpoint.username ?? '%EMAILADDRESS%', i),
    element('authentication', 'password-cleartext', i),
    `    </${tag}>`,
  ];
}

/** Outlook's POX autodiscover response: the preferred POP3 and SMTP endpoint. */
export function autodiscoverXml(settings: AccountSettings): string {
  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    `<Autodiscover xmlns="${AUTODISCOVER_RESPONSE_NS}">`,
    `  <Response xmlns="${OUTLOOK_RESPONSE_SCHEMA}">`,
    '    <Account>',
    '      <AccountType>email</AccountType>',
    '      <Action>settings</Action>',
  ];
  const pop3 = settings.incoming[0];
  const smtp = settings.outgoing[0];
  if (pop3 !== undefined) lines.push(...outlookProtocol('POP3', pop3, undefined));
  if (smtp !== undefined) lines.push(...outlookProtocol('SMTP', smtp, pop3));
  lines.push('    </Account>', '  </Response>', '</Autodiscover>', '');
  return lines.join('\n');
}

function outlookProtocol(type: 'POP3' | 'SMTP', endpoint: ResolvedEndpoint, pop3: ResolvedEndpoint | undefined): string[] {
  const i = '        ';
  const lines = [
    '      <Protocol>',
    element('Type', type, i),
    element('Server', endpoint.hostname, i),
    element('Port', String(endpoint.port), i),
  ];
  if (endpoint.username !== undefined) lines.push(element('LoginName', endpoint.username, i));
  lines.push(
    element('DomainRequired', 'off', i),
    // SPA is Microsoft's NTLM; maildird checks passwords inside TLS instead.
    element('SPA', 'off', i),
    element('SSL', endpoint.socketType === 'plain' ? 'off' : 'on', i),
    element('Encryption', endpoint.socketType === 'SSL' ? 'SSL' : endpoint.socketType === 'STARTTLS' ? 'TLS' : 'None', i),
    element('AuthRequired', 'on', i),
  );
  if (type === 'SMTP') {
    // Same login as POP3: Outlook reuses the POP3 credentials for SMTP AUTH.
    lines.push(element('UsePOPAuth', pop3 !== undefined && pop3.username === endpoint.username ? 'on' : 'off', i));
    lines.push(element('SMTPLast', 'off', i));
  }
  lines.push('      </Protocol>');
  return lines;
}

/** The POX error response (Exchange "Error (POX)"): 600 Invalid Request, 601 schema not supported. */
export function autodiscoverErrorXml(code: 600 | 601, message: string): string {
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    `<Autodiscover xmlns="${AUTODISCOVER_RESPONSE_NS}">`,
    '  <Response>',
    `    <Error Time="${escapeXml(new Date().toISOString().slice(11, 23))}" Id="0">`,
    element('ErrorCode', String(code), '      '),
    element('Message', message, '      '),
    '      <DebugData />',
    '    </Error>',
    '  </Response>',
    '</Autodiscover>',
    '',
  ].join('\n');
}

export type AutodiscoverRequest =
  | { readonly ok: true; readonly address: string; readonly schema: string | undefined }
  | { readonly ok: false; readonly reason: string };

/**
 * Read an autodiscover request (`<Autodiscover><Request><EMailAddress>...`).
 * Not a general XML parser: a document with a DOCTYPE or entity
 * declarations is refused (no entity expansion, no external fetches), and
 * only the EMailAddress and AcceptableResponseSchema texts are read, with
 * or without a namespace prefix.
 */
export function parseAutodiscoverRequest(body: string): AutodiscoverRequest {
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) return { ok: false, reason: 'DOCTYPE and entity declarations are not accepted' };
  if (!/<(?:[A-Za-z_][\w.-]*:)?Autodiscover[\s>]/.test(body)) return { ok: false, reason: 'not an Autodiscover request' };
  const address = elementText(body, 'EMailAddress');
  if (address === undefined || address === '') return { ok: false, reason: 'no EMailAddress' };
  const schema = elementText(body, 'AcceptableResponseSchema');
  return { ok: true, address, schema };
}

function elementText(body: string, name: string): string | undefined {
  const match = new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${name}(?:\\s[^>]*)?>([^<]*)</(?:[A-Za-z_][\\w.-]*:)?${name}\\s*>`).exec(body);
  if (match === null) return undefined;
  const text = unescapeXml(match[1] ?? '');
  return text === undefined ? undefined : text.trim();
}

/** The predefined entities and character references; undefined for anything else (an undeclared entity is an error). */
function unescapeXml(text: string): string | undefined {
  if (/&(?![^;&\s]*;)/.test(text)) return undefined;
  let isValid = true;
  const out = text.replace(/&([^;]*);/g, (_all, ref: string) => {
    switch (ref) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default: {
        const code = /^#x[0-9a-fA-F]{1,6}$/.test(ref) ? parseInt(ref.slice(2), 16) : /^#[0-9]{1,7}$/.test(ref) ? Number(ref.slice(1)) : NaN;
        if (!Number.isInteger(code) || code > 0x10ffff) {
          isValid = false;
          return '';
        }
        return String.fromCodePoint(code);
      }
    }
  });
  return isValid ? out : undefined;
}
