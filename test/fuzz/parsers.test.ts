/**
 * Parser fuzzing (issue 6, DESIGN invariants 3 and 4): every parser that
 * reads client or tree input is fed seeded random and hostile input, and
 * must never throw anything but its typed error, never accept a name that
 * could leave the root, never relay.
 */
import t from 'tap';
import fc from 'fast-check';
import * as path from 'node:path';
import { parseMaildirName, uidlFromBase, flatUidl } from '../../src/storage/maildir/filename.ts';
import { parsePasswdFile } from '../../src/auth/passwd-file.ts';
import { PlainExchange } from '../../src/auth/sasl/plain.ts';
import { LoginExchange } from '../../src/auth/sasl/login.ts';
import { CramMd5Exchange } from '../../src/auth/sasl/cram-md5.ts';
import { decodeStrictBase64, type SaslExchange, type SaslStep } from '../../src/auth/sasl/exchange.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';
import { RecipientPolicy, normaliseDomain } from '../../src/smtp/recipient-policy.ts';
import { AliasTable } from '../../src/smtp/aliases.ts';
import { traceHeaders } from '../../src/smtp/received.ts';
import { resolveUserDir, isStrictlyInside } from '../../src/storage/maildir/layout.ts';
import { StorageError } from '../../src/errors.ts';
import { announceSeed, fuzzSeed } from './support/seed.ts';

const seed = fuzzSeed();
const RUNS = 2000;
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({ seed, numRuns, endOnFailure: false });

/** Fragments that have broken path and name handling elsewhere. */
const HOSTILE = [
  '..', '.', '/', '\\', '\0', '\n', '\r', '\t', ' ', ':', ';', '!', '%', '@', '"', ',', '=', '~',
  ':2,', ';2,', '!2,', ':1,', ',S=', ',W=', '2,', 'S', 'M', '.M', 'P', 'Q',
  '%2e', '%2f', '\u0085', '\u2028', '\ufeff', '\u00e9', '\ud800', '\udfff', '😀', '\x7f', '\x1b',
  'alice', 'bob', 'root', 'etc', 'passwd', 'cur', 'new', 'tmp', '.Trash', 'maildird.lock',
  '12345', '1700000000', '999999999999999999', '-1', '0x10', '{PLAIN}', '#',
];
const hostilePiece = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 3 }));
const hostileString = (maxLength = 12): fc.Arbitrary<string> =>
  fc.array(hostilePiece, { maxLength }).map((parts) => parts.join(''));
const anyText = fc.oneof(hostileString(), fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ maxLength: 200 }));

function isUidl(uidl: string): boolean {
  const bytes = Buffer.from(uidl, 'latin1');
  if (bytes.length < 1 || bytes.length > 70) return false;
  return bytes.every((b) => b >= 0x21 && b <= 0x7e) && Buffer.from(uidl, 'utf8').length === bytes.length;
}

t.test('Maildir names: parse never throws, parts add up, UIDL always 1-70 octets of 0x21-0x7E', async (t) => {
  announceSeed(t, seed, 'maildir names');
  fc.assert(
    fc.property(anyText, fc.subarray([':', ';', '!']), (name, seps) => {
      const parsed = parseMaildirName(name, seps.length > 0 ? seps : undefined);
      if (parsed !== undefined) {
        if (parsed.base.length === 0 || name.startsWith('.') || name.includes('/') || name.includes('\0')) return false;
        const rebuilt = parsed.info === undefined ? parsed.base : `${parsed.base}${parsed.separator}${parsed.info}`;
        if (rebuilt !== name) return false;
        for (const n of [parsed.size, parsed.wireSize, parsed.seconds, parsed.usec]) {
          if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) return false;
        }
        if (!isUidl(uidlFromBase(parsed.base))) return false;
      }
      return isUidl(uidlFromBase(name)) && isUidl(flatUidl(name));
    }),
    params(),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => isUidl(uidlFromBase(Buffer.from(bytes)))),
    params(),
  );
  // Edges by hand: 70 and 71 octets, a space, DEL, empty.
  t.equal(uidlFromBase('a'.repeat(70)), 'a'.repeat(70));
  t.match(uidlFromBase('a'.repeat(71)), /^~[0-9a-f]{40}$/);
  t.match(uidlFromBase('a b'), /^~[0-9a-f]{40}$/);
  t.match(uidlFromBase('a\x7f'), /^~[0-9a-f]{40}$/);
  t.match(uidlFromBase(''), /^~[0-9a-f]{40}$/);
});

/** What a users-file name must never be: it becomes a folder under the root. */
function isSafeUserName(name: string): boolean {
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) return false;
  if (/[\u0000-\u001f\u007f]/.test(name)) return false;
  for (const part of name.split('@')) if (part === '' || part === '.' || part === '..') return false;
  return true;
}

t.test('users file: parse never throws; accepted names and homes cannot leave the root', async (t) => {
  announceSeed(t, seed, 'users file');
  const field = fc.oneof(hostileString(6), fc.constantFrom('', '1000', '/home/alice', '/srv/mail/../etc', '{PLAIN}x'));
  const line = fc.oneof(
    anyText,
    fc.array(field, { minLength: 1, maxLength: 9 }).map((fields) => fields.join(':')),
    fc.tuple(hostileString(6), fc.constantFrom('userdb_home=/../etc', 'userdb_home=/srv/../..', 'userdb_uid=0', 'nologin', 'userdb_home=/a/b'))
      .map(([name, extra]) => `${name}:{PLAIN}x::::::${extra}`),
  );
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(line, { maxLength: 8 }), fc.boolean(), fc.boolean(), (lines, crlf, asBytes) => {
      const text = lines.join(crlf ? '\r\n' : '\n');
      const parsed = parsePasswdFile(asBytes ? Buffer.from(text, 'utf8') : text, { caseInsensitive: crlf });
      for (const entry of parsed.entries) {
        accepted++;
        if (!isSafeUserName(entry.name)) return false;
        const home = entry.userdb.home;
        if (home !== undefined && (!home.startsWith('/') || home.split('/').includes('..'))) return false;
      }
      return parsed.entries.length + parsed.errors.length <= lines.join('\n').split('\n').length;
    }),
    params(),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const parsed = parsePasswdFile(bytes);
      return parsed.entries.every((e) => isSafeUserName(e.name));
    }),
    params(),
  );
  t.ok(accepted > 0, `some generated lines were accepted (${accepted}), so the name check was exercised`);
});

/** Drive one exchange through `lines`; returns every step. Throws only if the exchange does. */
function drive(exchange: SaslExchange, initial: string | undefined, lines: readonly string[]): SaslStep[] {
  const steps = [exchange.start(initial)];
  for (const l of lines) steps.push(exchange.next(l));
  return steps;
}

t.test('SASL: no exchange throws; only strict base64 gets past the framing; credentials are sane', async (t) => {
  announceSeed(t, seed, 'sasl');
  const b64 = fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).toString('base64'));
  const plainMsg = fc
    .tuple(hostileString(3), hostileString(3), hostileString(3))
    .map(([z, c, p]) => Buffer.from(`${z}\0${c}\0${p}`, 'utf8').toString('base64'));
  const mutated = fc.tuple(b64, fc.nat(80), fc.constantFrom('', ' ', '\r', '=', '==', '\0', '-', '_', 'A', '\n', '*'))
    .map(([s, at, ins]) => s.slice(0, at) + ins + s.slice(at + 1));
  const cramMsg = fc
    .tuple(hostileString(3), fc.stringMatching(/^[0-9a-fA-F]{32}$/))
    .map(([u, d]) => Buffer.from(`${u} ${d}`, 'utf8').toString('base64'));
  const payload = fc.oneof(b64, plainMsg, plainMsg, cramMsg, mutated, anyText, fc.constantFrom('*', '=', '', '===='));
  const mechanism = fc.constantFrom('PLAIN', 'LOGIN', 'CRAM-MD5');
  let done = 0;
  fc.assert(
    fc.property(mechanism, fc.option(payload, { nil: undefined }), fc.array(payload, { maxLength: 4 }), (mech, initial, lines) => {
      const exchange =
        mech === 'PLAIN' ? new PlainExchange() : mech === 'LOGIN' ? new LoginExchange() : new CramMd5Exchange({ hostname: 'h.test', now: () => 0, random: () => '1' });
      const steps = drive(exchange, initial, lines);
      const fed = [initial, ...lines];
      let ended = false;
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!;
        const line = fed[i];
        if (ended) {
          if (step.kind !== 'error' || step.error !== 'finished') return false;
          continue;
        }
        if (step.kind === 'challenge') {
          if (decodeStrictBase64(step.challenge) === undefined && step.challenge !== '') return false;
          continue;
        }
        ended = true;
        if (step.kind === 'done') {
          done++;
          // Every line that led here was strict base64 (or the empty `=` initial response).
          for (const l of fed.slice(0, i + 1)) {
            if (l === undefined) continue;
            if (decodeStrictBase64(l) === undefined && l !== '=') return false;
          }
          const c = step.credentials;
          if (c.login === '' || c.login.includes('\0') || c.login !== step.login) return false;
          if (c.kind === 'password' && (c.password === '' || c.password.includes('\0'))) return false;
          if (c.kind === 'digest' && !/^[0-9a-f]{32}$/.test(c.digestHex)) return false;
        } else if (line !== undefined && line !== '*' && line !== '=' && decodeStrictBase64(line) === undefined && step.error !== 'bad-base64' && step.error !== 'malformed') {
          return false;
        }
      }
      return true;
    }),
    params(3000),
  );
  // Strict means one spelling: whatever decodes must re-encode to the same text.
  fc.assert(
    fc.property(fc.oneof(anyText, mutated), (text) => {
      const bytes = decodeStrictBase64(text);
      return bytes === undefined || bytes.toString('base64') === text;
    }),
    params(),
  );
  t.ok(done > 0, `some exchanges completed (${done})`);
});

const LOCAL_DOMAINS = ['example.org', 'bücher.example'];

t.test('recipient policy: hostile addresses never resolve to anything but a local user of a local domain', async (t) => {
  announceSeed(t, seed, 'recipients');
  const users = UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}a' },
      { name: 'bob', password: '{PLAIN}b' },
      { name: 'carol@other.example', password: '{PLAIN}c' },
      { name: 'postmaster', password: '{PLAIN}p' },
    ],
    { localDomains: LOCAL_DOMAINS, dummyHash: '{PLAIN}dummy' },
  );
  // Aliases pointing out of the house must be skipped, never relayed to.
  const aliases = new AliasTable('sales: alice, someone@evil.example\nouter: victim@evil.example\nloop: loop\n');
  const policy = new RecipientPolicy({ users, localDomains: LOCAL_DOMAINS, aliases });
  const known = new Set(users.users().map((u) => u.name));
  const local = fc.oneof(
    fc.constantFrom('alice', 'bob', 'carol', 'postmaster', 'PostMaster', 'sales', 'outer', 'loop', 'alice+tag', '"alice"', '"al\\ice"', '"alice@evil.example"'),
    fc.tuple(fc.constantFrom('alice', 'bob', 'victim'), fc.constantFrom('%', '!', '@', ':', ',', '"', '+', '%evil.example', '@evil.example', '.'), fc.constantFrom('evil.example', 'alice', '', 'bob'))
      .map(([a, s, b]) => `${a}${s}${b}`),
    fc.tuple(fc.constantFrom('evil.example', 'host'), fc.constantFrom('!alice', '!bob')).map(([a, b]) => `${a}${b}`),
    hostileString(5),
  );
  const domain = fc.oneof(
    fc.constantFrom(
      'example.org', 'EXAMPLE.ORG', 'example.org.', 'example.org..', 'example.org.evil.example', 'evil.example', 'other.example',
      'OTHER.example.', 'xn--bcher-kva.example', 'bücher.example', '[127.0.0.1]', '[IPv6:::1]', 'localhost', '', 'example.org@evil.example',
    ),
    hostileString(4),
  );
  const address = fc.oneof(
    fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`),
    local,
    fc.tuple(fc.constantFrom('@evil.example:', '@a,@b:'), local, domain).map(([r, l, d]) => `${r}${l}@${d}`),
  );
  let acceptedCount = 0;
  fc.assert(
    fc.property(address, (addr) => {
      const result = policy.resolve(addr);
      if (!result.ok) return result.reply !== undefined;
      acceptedCount++;
      if (result.users.length === 0) return false;
      const at = addr.lastIndexOf('@');
      const dom = at < 0 ? undefined : normaliseDomain(addr.slice(at + 1));
      for (const user of result.users) {
        if (!known.has(user.name)) return false;
        const userAt = user.name.lastIndexOf('@');
        const userDomain = userAt < 0 ? undefined : normaliseDomain(user.name.slice(userAt + 1));
        // The address's domain is a local domain or the full-address user's own domain.
        const isLocal = dom === undefined || LOCAL_DOMAINS.map(normaliseDomain).includes(dom) || dom === userDomain;
        if (!isLocal) return false;
      }
      return true;
    }),
    params(4000),
  );
  t.ok(acceptedCount > 0, `some addresses were accepted (${acceptedCount})`);
  // The classic open-relay probes, each refused.
  for (const probe of [
    'victim%evil.example@example.org', 'evil.example!victim@example.org', '"victim@evil.example"@example.org',
    'victim@evil.example', 'victim@example.org.evil.example', 'victim@evil.example.', 'outer@example.org', 'alice@evil.example',
  ]) {
    t.notOk(policy.resolve(probe).ok, `refused: ${probe}`);
  }
  t.match(policy.resolve('sales@example.org'), { ok: true, users: [{ name: 'alice' }] }, 'an alias reaches only its local target');
});

t.test('Received headers: no control character (header injection) from any input', async (t) => {
  announceSeed(t, seed, 'received');
  const v = fc.oneof(anyText, hostileString(6));
  fc.assert(
    fc.property(v, fc.option(v, { nil: undefined }), fc.option(v, { nil: undefined }), v, v, fc.option(v, { nil: undefined }), (from, helo, rdns, host, id, rcpt) => {
      const text = traceHeaders(
        { mailFrom: from, helo, clientHostname: rdns, remoteAddress: '127.0.0.1', hostname: host, protocol: 'ESMTP', queueId: id, date: new Date(0) },
        rcpt,
      );
      // Only the folding the function itself writes: CRLF followed by a tab.
      const lines = text.split('\r\n');
      if (lines.pop() !== '') return false;
      return lines.every((l, i) => !/[\x00-\x08\x0a-\x1f\x7f]/.test(l) && (i === 0 || l.startsWith('Received: ') || l.startsWith('\t')));
    }),
    params(),
  );
  t.pass('every Received/Return-Path line free of control characters');
});

t.test('layout: resolveUserDir stays strictly inside the root or throws StorageError(invalid-name)', async (t) => {
  announceSeed(t, seed, 'layout');
  const root = path.resolve('/srv/mail/root');
  const name = fc.oneof(hostileString(6), fc.constantFrom('alice', 'alice@example.org', '..@..', '.@x', 'a@..', '../..', '..%2f', 'a/../../b'));
  const home = fc.option(
    fc.oneof(
      hostileString(6),
      fc.constantFrom('/srv/mail/root/alice', '/srv/mail/root', '/srv/mail/root/../x', '/srv/mail/rootx/a', '/etc', 'alice/Maildir', '../x', '//srv/mail/root/a', '/srv/mail/root/./a'),
    ),
    { nil: undefined },
  );
  const template = fc.constantFrom('%u', '%d/%n', '%n', '%h', '%h/Maildir', 'mail/%u', '%d/%n/Maildir', '%%u', '%u/%h', '%x');
  let resolved = 0;
  fc.assert(
    fc.property(name, home, template, fc.option(fc.constantFrom('example.org', '..', '', 'a/b'), { nil: undefined }), (n, h, tpl, dd) => {
      try {
        const dir = resolveUserDir(root, tpl, { name: n, home: h }, dd);
        resolved++;
        return isStrictlyInside(root, dir) && path.isAbsolute(dir) && !dir.includes('\0');
      } catch (err) {
        return err instanceof StorageError && err.kind === 'invalid-name';
      }
    }),
    params(4000),
  );
  t.ok(resolved > 0, `some folders resolved (${resolved})`);
});
