/**
 * createHttpServer over real sockets: Thunderbird autoconfig and Outlook
 * autodiscover documents parsed and checked element by element, the admin
 * pages' network rule (a client bound to 127.0.0.2), /healthz status
 * codes, /metrics format, and bad requests.
 */
import t, { type Test } from 'tap';
import * as path from 'node:path';
import { UserDatabase } from '../../src/auth/user-db.js';
import { loadConfig } from '../../src/config/load.js';
import { clientEndpoints } from '../../src/http/client-settings.js';
import { createHttpServer, type HealthReport, type HttpServerOptions } from '../../src/http/server.js';
import { ServerMetrics } from '../../src/http/server-metrics.js';
import { fetchFrom } from '../helpers/http-client.js';
import { child, childrenNamed, leaves, parseXml, type XmlElement } from '../helpers/http-xml.js';

const RESPONSE_NS = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
const OUTLOOK_NS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

const HEALTHY: HealthReport = { ok: true, checks: [{ name: 'store', ok: true, detail: '/srv/mail is writable' }] };

async function start(
  t: Test,
  fileConfig: Record<string, unknown> = {},
  overrides: Partial<HttpServerOptions> = {},
): Promise<{ port: number; metrics: ServerMetrics }> {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({
      hostname: 'mail.example.org',
      domains: ['example.org', 'example.net'],
      listeners: { pop3: 110, pop3s: 995, smtp: 25, submission: 587, smtps: 465, http: '127.0.0.1:0' },
      tls: { cert: '/etc/ssl/mail.pem', key: '/etc/ssl/mail.key' },
      ...fileConfig,
    }),
  });
  const config = await loadConfig({ cwd: dir, env: {}, flags: { config: path.join(dir, 'maildird.json') } });
  const users = UserDatabase.fromEntries([
    { name: 'alice', password: '{PLAIN}a' },
    { name: 'carol@example.org', password: '{PLAIN}c' },
    { name: "o'hara&co", password: '{PLAIN}o' },
  ], { localDomains: config.domains });
  const metrics = new ServerMetrics();
  const server = createHttpServer({
    endpoints: clientEndpoints(config),
    users,
    metrics,
    health: async () => HEALTHY,
    adminNetworks: config.http.adminNetworks,
    ...overrides,
  });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  return { port: address.port, metrics };
}

function servers(provider: XmlElement, tag: string): { type: string | undefined; fields: [string, string][] }[] {
  return childrenNamed(provider, tag).map((server) => ({ type: server.attributes['type'], fields: leaves(server) }));
}

t.test('Thunderbird autoconfig for an address: config-v1.1, POP3S then POP3, SMTPS then submission, canonical login', async (t) => {
  const { port } = await start(t);
  for (const target of [
    '/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org',
    '/mail/config-v1.1.xml?emailaddress=alice@example.net',
  ]) {
    const reply = await fetchFrom(port, 'GET', target);
    t.equal(reply.status, 200, target);
    t.match(reply.headers['content-type'], /^application\/xml; charset=utf-8$/);
    t.equal(reply.headers['cache-control'], 'private, no-store', 'a document naming a login is not cached by proxies');
    t.match(reply.body, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/);
    const root = parseXml(reply.body);
    t.equal(root.name, 'clientConfig');
    t.equal(root.attributes['version'], '1.1');
    const provider = child(root, 'emailProvider');
    t.same(childrenNamed(provider, 'domain').map((d) => d.text), ['example.org', 'example.net']);
    t.equal(child(provider, 'displayName').text, 'maildird on mail.example.org');
    const domain = target.includes('example.net') ? 'example.net' : 'example.org';
    t.equal(provider.attributes['id'], domain);
    t.equal(child(provider, 'displayShortName').text, domain);
    t.same(servers(provider, 'incomingServer'), [
      {
        type: 'pop3',
        fields: [['hostname', 'mail.example.org'], ['port', '995'], ['socketType', 'SSL'], ['username', 'alice'], ['authentication', 'password-cleartext']],
      },
      {
        type: 'pop3',
        fields: [['hostname', 'mail.example.org'], ['port', '110'], ['socketType', 'STARTTLS'], ['username', 'alice'], ['authentication', 'password-cleartext']],
      },
    ]);
    t.same(servers(provider, 'outgoingServer'), [
      {
        type: 'smtp',
        fields: [['hostname', 'mail.example.org'], ['port', '465'], ['socketType', 'SSL'], ['username', 'alice'], ['authentication', 'password-cleartext']],
      },
      {
        type: 'smtp',
        fields: [['hostname', 'mail.example.org'], ['port', '587'], ['socketType', 'STARTTLS'], ['username', 'alice'], ['authentication', 'password-cleartext']],
      },
    ]);
  }
});

t.test('autoconfig logins: full-address users, unknown users, no address, escaping', async (t) => {
  const { port } = await start(t);
  const usernames = async (target: string): Promise<string[]> => {
    const reply = await fetchFrom(port, 'GET', target);
    t.equal(reply.status, 200, target);
    const provider = child(parseXml(reply.body), 'emailProvider');
    return [...childrenNamed(provider, 'incomingServer'), ...childrenNamed(provider, 'outgoingServer')].map((s) => child(s, 'username').text);
  };
  t.same(await usernames('/mail/config-v1.1.xml?emailaddress=carol@EXAMPLE.org'), Array(4).fill('carol@example.org'), 'the users file spelling');
  t.same(await usernames('/mail/config-v1.1.xml?emailaddress=zoe@example.org'), Array(4).fill('zoe@example.org'), 'an unknown user: the address');
  t.same(await usernames('/.well-known/autoconfig/mail/config-v1.1.xml'), Array(4).fill('%EMAILADDRESS%'), 'no address: the placeholder');

  const tricky = "o'hara&co@example.org";
  const reply = await fetchFrom(port, 'GET', `/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(tricky)}`);
  t.match(reply.body, /<username>o&apos;hara&amp;co<\/username>/, 'escaped in the document');
  t.same(await usernames(`/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(tricky)}`), Array(4).fill("o'hara&co"), 'and read back whole');

  const foreign = await fetchFrom(port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@elsewhere.test');
  t.equal(foreign.status, 404, 'a domain this server does not serve');
  for (const bad of ['alice', '<x>@example.org', 'a b@example.org', `${'a'.repeat(250)}@example.org`]) {
    const invalid = await fetchFrom(port, 'GET', `/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(bad)}`);
    t.equal(invalid.status, 400, `invalid address ${bad.slice(0, 20)}`);
  }
  const post = await fetchFrom(port, 'POST', '/mail/config-v1.1.xml', { body: 'x' });
  t.equal(post.status, 405);
  t.equal(post.headers['allow'], 'GET, HEAD');
});

t.test('autoconfig with a configured outgoing server (the user\'s provider)', async (t) => {
  const { port } = await start(t, { clientConfig: { outgoing: 'smtp.provider.test:587' } });
  const reply = await fetchFrom(port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@example.org');
  const provider = child(parseXml(reply.body), 'emailProvider');
  t.same(servers(provider, 'outgoingServer'), [
    {
      type: 'smtp',
      fields: [['hostname', 'smtp.provider.test'], ['port', '587'], ['socketType', 'STARTTLS'], ['username', 'alice@example.org'], ['authentication', 'password-cleartext']],
    },
  ]);
  t.equal(child(childrenNamed(provider, 'incomingServer')[0] as XmlElement, 'username').text, 'alice', 'POP3 keeps the maildird login');

  const ssl = await start(t, { clientConfig: { outgoing: 'smtp.provider.test:465', outgoingUsername: 'user' } });
  const sslProvider = child(parseXml((await fetchFrom(ssl.port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@example.org')).body), 'emailProvider');
  const out = child(sslProvider, 'outgoingServer');
  t.equal(child(out, 'socketType').text, 'SSL', 'auto: port 465 is implicit TLS');
  t.equal(child(out, 'username').text, 'alice');
});

t.test('autoconfig without a certificate advertises plain POP3 and submission only where they listen', async (t) => {
  const { port } = await start(t, { tls: { cert: null, key: null }, listeners: { pop3: 110, submission: 587, http: '127.0.0.1:0' } });
  const provider = child(parseXml((await fetchFrom(port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@example.org')).body), 'emailProvider');
  t.same(servers(provider, 'incomingServer').map((s) => Object.fromEntries(s.fields)['socketType']), ['plain']);
  t.same(servers(provider, 'outgoingServer').map((s) => `${Object.fromEntries(s.fields)['port']} ${Object.fromEntries(s.fields)['socketType']}`), ['587 plain']);
});

const AUTODISCOVER_REQUEST = (address: string, schema = OUTLOOK_NS) => `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>${address}</EMailAddress>
    <AcceptableResponseSchema>${schema}</AcceptableResponseSchema>
  </Request>
</Autodiscover>`;

t.test('Outlook autodiscover: POX response with POP3 and SMTP protocols', async (t) => {
  const { port } = await start(t);
  for (const target of ['/autodiscover/autodiscover.xml', '/Autodiscover/Autodiscover.xml']) {
    const reply = await fetchFrom(port, 'POST', target, { body: AUTODISCOVER_REQUEST('carol@example.org') });
    t.equal(reply.status, 200, target);
    t.match(reply.headers['content-type'], /^application\/xml/);
    const root = parseXml(reply.body);
    t.equal(root.name, 'Autodiscover');
    t.equal(root.namespace, RESPONSE_NS);
    const response = child(root, 'Response');
    t.equal(response.namespace, OUTLOOK_NS);
    const account = child(response, 'Account');
    t.equal(child(account, 'AccountType').text, 'email');
    t.equal(child(account, 'Action').text, 'settings');
    const protocols = childrenNamed(account, 'Protocol');
    t.same(protocols.map(leaves), [
      [
        ['Type', 'POP3'],
        ['Server', 'mail.example.org'],
        ['Port', '995'],
        ['LoginName', 'carol@example.org'],
        ['DomainRequired', 'off'],
        ['SPA', 'off'],
        ['SSL', 'on'],
        ['Encryption', 'SSL'],
        ['AuthRequired', 'on'],
      ],
      [
        ['Type', 'SMTP'],
        ['Server', 'mail.example.org'],
        ['Port', '465'],
        ['LoginName', 'carol@example.org'],
        ['DomainRequired', 'off'],
        ['SPA', 'off'],
        ['SSL', 'on'],
        ['Encryption', 'SSL'],
        ['AuthRequired', 'on'],
        ['UsePOPAuth', 'on'],
        ['SMTPLast', 'off'],
      ],
    ]);
  }
  // A bare user: the address resolves to the canonical name; a namespace prefix and entities in the request are read.
  const prefixed = `<a:Autodiscover xmlns:a="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><a:Request><a:EMailAddress>alice&#64;example.org</a:EMailAddress></a:Request></a:Autodiscover>`;
  const reply = await fetchFrom(port, 'POST', '/autodiscover/autodiscover.xml', { body: prefixed });
  t.equal(reply.status, 200);
  const pop3 = childrenNamed(child(child(parseXml(reply.body), 'Response'), 'Account'), 'Protocol')[0] as XmlElement;
  t.equal(child(pop3, 'LoginName').text, 'alice');
});

t.test('autodiscover errors: POX Error documents, never a crash', async (t) => {
  const { port } = await start(t);
  const errorOf = (body: string): { code: string; message: string } => {
    const error = child(child(parseXml(body), 'Response'), 'Error');
    return { code: child(error, 'ErrorCode').text, message: child(error, 'Message').text };
  };
  const cases: { name: string; body: string; status: number; code: string; message: RegExp }[] = [
    { name: 'another schema', body: AUTODISCOVER_REQUEST('alice@example.org', 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006'), status: 200, code: '601', message: /not supported/ },
    { name: 'a foreign domain', body: AUTODISCOVER_REQUEST('alice@elsewhere.test'), status: 404, code: '600', message: /not a domain/ },
    { name: 'a bad address', body: AUTODISCOVER_REQUEST('not an address'), status: 400, code: '600', message: /EMailAddress/ },
    { name: 'no address', body: '<Autodiscover><Request></Request></Autodiscover>', status: 400, code: '600', message: /no EMailAddress/ },
    { name: 'a DTD', body: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${AUTODISCOVER_REQUEST('&e;')}`, status: 400, code: '600', message: /DOCTYPE/ },
    { name: 'an unknown entity', body: AUTODISCOVER_REQUEST('alice&nbsp;@example.org'), status: 400, code: '600', message: /EMailAddress/ },
    { name: 'not XML', body: 'EMailAddress=alice@example.org', status: 400, code: '600', message: /not an Autodiscover request/ },
    { name: 'too large', body: AUTODISCOVER_REQUEST(`${'a'.repeat(20_000)}@example.org`), status: 413, code: '600', message: /too large/ },
  ];
  for (const c of cases) {
    const reply = await fetchFrom(port, 'POST', '/autodiscover/autodiscover.xml', { body: c.body });
    t.equal(reply.status, c.status, c.name);
    const error = errorOf(reply.body);
    t.equal(error.code, c.code, c.name);
    t.match(error.message, c.message, c.name);
  }
  const get = await fetchFrom(port, 'GET', '/autodiscover/autodiscover.xml');
  t.equal(get.status, 405);
  t.equal(get.headers['allow'], 'POST');
  t.equal((await fetchFrom(port, 'GET', '/nothing-here')).status, 404);
  t.equal((await fetchFrom(port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@example.org')).status, 200, 'still serving');
});

t.test('admin pages: loopback 127.0.0.1 and configured networks only; autoconfig for everyone', async (t) => {
  const narrow = await start(t, { http: { adminNetworks: ['127.0.0.1/32'] } });
  for (const page of ['/metrics', '/healthz']) {
    t.equal((await fetchFrom(narrow.port, 'GET', page)).status, 200, `${page} from 127.0.0.1`);
    const refused = await fetchFrom(narrow.port, 'GET', page, { localAddress: '127.0.0.2' });
    t.equal(refused.status, 403, `${page} from 127.0.0.2, outside 127.0.0.1/32`);
    t.notMatch(refused.body, /maildird_|store/, 'nothing of the page leaks');
    const proxied = await fetchFrom(narrow.port, 'GET', page, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    t.equal(proxied.status, 403, `${page} through a proxy, even from loopback`);
  }
  const autoconfig = await fetchFrom(narrow.port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@example.org', { localAddress: '127.0.0.2' });
  t.equal(autoconfig.status, 200, 'autoconfig is public');

  const wide = await start(t, { http: { adminNetworks: ['127.0.0.0/30'] } });
  t.equal((await fetchFrom(wide.port, 'GET', '/metrics', { localAddress: '127.0.0.2' })).status, 200, '127.0.0.2 inside 127.0.0.0/30');
  t.equal((await fetchFrom(wide.port, 'GET', '/metrics', { localAddress: '127.0.0.5' })).status, 403, '127.0.0.5 outside it');
});

t.test('/healthz: 200 or 503 with the checks as JSON', async (t) => {
  let report: HealthReport = HEALTHY;
  const { port } = await start(t, {}, { health: async () => report });
  const ok = await fetchFrom(port, 'GET', '/healthz');
  t.equal(ok.status, 200);
  t.match(ok.headers['content-type'], /^application\/json/);
  t.same(JSON.parse(ok.body), { status: 'ok', checks: HEALTHY.checks });
  report = { ok: false, checks: [{ name: 'store', ok: false, detail: '/srv/mail is not writable (EROFS)' }] };
  const failing = await fetchFrom(port, 'GET', '/healthz');
  t.equal(failing.status, 503);
  t.same(JSON.parse(failing.body), { status: 'fail', checks: report.checks });
  const head = await fetchFrom(port, 'HEAD', '/healthz');
  t.equal(head.status, 503);
  t.equal(head.body, '');
});

t.test('/metrics: Prometheus text 0.0.4 that counts the HTTP requests themselves', async (t) => {
  const { port } = await start(t);
  await fetchFrom(port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@example.org');
  await fetchFrom(port, 'GET', '/mail/config-v1.1.xml?emailaddress=alice@elsewhere.test');
  const reply = await fetchFrom(port, 'GET', '/metrics');
  t.equal(reply.status, 200);
  t.equal(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.match(reply.body, /^# HELP maildird_connections_open /m);
  t.match(reply.body, /^# TYPE maildird_delivery_duration_seconds histogram$/m);
  t.match(reply.body, /^maildird_http_requests_total\{route="autoconfig",status="200"\} 1$/m);
  t.match(reply.body, /^maildird_http_requests_total\{route="autoconfig",status="404"\} 1$/m);
  t.ok(reply.body.endsWith('\n'));
  const again = await fetchFrom(port, 'GET', '/metrics');
  t.match(again.body, /^maildird_http_requests_total\{route="metrics",status="200"\} 1$/m, 'the previous scrape counted');
});
