import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  formatPasswdLine,
  isValidUserName,
  parsePasswdFile,
  parsePasswdLine,
  userKey,
  userNameProblem,
  type PasswdFields,
} from '../../src/auth/passwd-file.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/users/${name}`, import.meta.url));

t.test('parses a Dovecot passwd-file with comments, blank lines and extra fields', async (t) => {
  const file = parsePasswdFile(fixture('dovecot.passwd'));
  t.same(file.errors, []);
  t.same(
    file.entries.map((e) => e.name),
    ['alice', 'bob', 'carol@example.org', 'dave', 'erin', 'frank', 'grace', 'heidi'],
  );
  const [alice, bob, carol, dave, erin, frank] = file.entries;
  t.match(alice, {
    line: 5,
    uid: 1000,
    gid: 1000,
    gecos: 'Alice Liddell',
    home: '/home/alice',
    shell: '',
    extraFields: [
      { key: 'userdb_quota_rule', value: '*:storage=100M' },
      { key: 'userdb_quota_rule2', value: '*:messages=5000' },
    ],
    userdb: { home: '/home/alice', uid: 1000, gid: 1000, quotaBytes: 100 * 1024 * 1024, quotaMessages: 5000, nologin: false },
  });
  t.match(alice?.password, /^\{SHA512-CRYPT\}\$6\$/);
  t.match(bob, { password: '{PLAIN}secret', home: '/var/vmail/bob', userdb: { quotaBytes: undefined } });
  t.match(carol, { uid: undefined, userdb: { quotaBytes: 1024 ** 3, home: undefined } });
  t.match(dave, { password: /^\$6\$/, uid: undefined, extraFields: [] });
  t.match(erin, { userdb: { nologin: true, home: '/srv/mail/erin' }, home: '' }, 'userdb_home and nologin');
  t.match(frank, { password: '' });
  t.match(file.warnings, [{ line: 11, message: /frank has no password/ }]);
});

t.test('every bad line is an error with its number and reason; good lines survive', async (t) => {
  const file = parsePasswdFile(fixture('broken.passwd'));
  t.same(file.entries.map((e) => e.name), ['ok']);
  const byLine = new Map(file.errors.map((e) => [e.line, e.reason]));
  const expected: [number, RegExp][] = [
    [3, /empty name/],
    [4, /starts with "\."/],
    [5, /starts with "\."/],
    [6, /whitespace/],
    [7, /path separator/],
    [8, /no password field/],
    [9, /uid "12ab"/],
    [10, /more than one "@"/],
    [11, /duplicate user ok \(first on line 2\)/],
    [12, /bad quota value storage=lots/],
    [13, /not an absolute path/],
    [14, /control character/],
    [15, /not valid UTF-8/],
  ];
  for (const [line, reason] of expected) t.match(byLine.get(line), reason, `line ${line}`);
  t.equal(file.errors.length, expected.length);
  t.equal(file.errors.find((e) => e.line === 11)?.name, 'ok');
});

t.test('user names that could not be one visible folder are refused', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['.', /reserved/],
    ['..', /reserved/],
    ['.alice', /starts with/],
    ['a/b', /path separator/],
    ['a\\b', /path separator/],
    ['a\0b', /control/],
    ['a\tb', /control/],
    ['a\u0085b', /control/],
    ['a b', /whitespace/],
    ['a\u00a0b', /whitespace/],
    ['a\u2028b', /whitespace/],
    ['a:b', /":"/],
    ['x'.repeat(256), /255 octets/],
    ['é'.repeat(128), /255 octets/],
    ['a@b@c', /more than one/],
    ['@example.org', /empty local part/],
    ['alice@', /empty domain/],
    ['alice@..', /domain ".." is reserved/],
    ['alice@.example.org', /domain starts with/],
    ['..@example.org', /starts with/],
    ['x@..', /domain/],
    ['x@.', /domain "." is reserved/],
    ['.@example.org', /starts with/],
    ['a\ud800b', /Unicode/],
  ];
  // Labels escape everything outside printable ASCII: U+2028 would break TAP's own lines.
  const show = (s: string) => JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  for (const [name, reason] of bad) t.match(userNameProblem(name), reason, show(name));
  for (const good of ['alice', 'Alice', 'alice@example.org', 'al.ice', 'alice.', 'jörg', 'x'.repeat(255), 'user+tag', '😀']) {
    t.ok(isValidUserName(good), show(good));
  }
});

t.test('userKey folds the domain always, the rest on request', async (t) => {
  t.equal(userKey('Alice@Example.ORG', false), 'Alice@example.org');
  t.equal(userKey('Alice@Example.ORG', true), 'alice@example.org');
  t.equal(userKey('Alice', false), 'Alice');
  t.equal(userKey('Alice', true), 'alice');
  const file = parsePasswdFile('alice:{PLAIN}a\nAlice:{PLAIN}b\nx@EXAMPLE.org:{PLAIN}c\nx@example.org:{PLAIN}d\n');
  t.same(file.entries.map((e) => e.name), ['alice', 'Alice', 'x@EXAMPLE.org']);
  t.match(file.errors, [{ line: 4, reason: /duplicate/ }]);
  const folded = parsePasswdFile('alice:{PLAIN}a\nAlice:{PLAIN}b\n', { caseInsensitive: true });
  t.match(folded.errors, [{ line: 2, reason: /duplicate user Alice \(first on line 1\)/ }]);
});

t.test('line ends, BOM and the eighth field', async (t) => {
  const file = parsePasswdFile('\ufeffa:{PLAIN}x\r\nb:{PLAIN}y:::::: k=v:with:colons  flag\r\n');
  t.same(file.errors, []);
  t.same(file.entries.map((e) => e.name), ['a', 'b']);
  t.same(file.entries[1]?.extraFields, [
    { key: 'k', value: 'v:with:colons' },
    { key: 'flag', value: undefined },
  ]);
  t.same(parsePasswdFile('').entries, []);
  t.same(parsePasswdFile('\n\n# only comments\n').errors, []);
  t.equal(parsePasswdFile('a:{PLAIN}x').entries.length, 1, 'no final line end');
});

t.test('warns about passdb fields maildird does not enforce and unknown schemes', async (t) => {
  const file = parsePasswdFile('a:{PLAIN}x:::::: allow_nets=10.0.0.0/8\nb:{WHAT}x\nc:{PLAIN}x::::::userdb_quota_rule=Trash:storage=+10M\n');
  t.same(file.errors, []);
  t.match(file.warnings, [
    { line: 1, message: /allow_nets is not enforced/ },
    { line: 2, message: /unknown password scheme/ },
    { line: 3, message: /ignored quota rule for mailbox "Trash"/ },
  ]);
});

t.test('ids and homes', async (t) => {
  t.match(parsePasswdLine('a:x:4294967294:0', 1), { kind: 'entry', entry: { uid: 4294967294, gid: 0 } });
  t.match(parsePasswdLine('a:x:4294967295', 1), { kind: 'error', reason: /uid/ });
  t.match(parsePasswdLine('a:x:-1', 1), { kind: 'error' });
  t.match(parsePasswdLine('a:x:::::: userdb_uid=5 userdb_gid=6', 1), { kind: 'entry', entry: { uid: undefined, userdb: { uid: 5, gid: 6 } } });
  t.match(parsePasswdLine('a:x:::::: userdb_uid=five', 1), { kind: 'error', reason: /userdb_uid/ });
  t.match(parsePasswdLine('a:x::::/srv/../etc', 1), { kind: 'error', reason: /\.\./ });
  t.match(parsePasswdLine('a:x:::::: userdb_home=rel', 1), { kind: 'error', reason: /absolute/ });
  t.match(parsePasswdLine('a:x:::::: =v', 1), { kind: 'error', reason: /empty key/ });
  t.match(parsePasswdLine('  ', 1), { kind: 'blank' });
  t.match(parsePasswdLine(' # x', 1), { kind: 'comment' });
});

t.test('formatPasswdLine round-trips', async (t) => {
  const cases: PasswdFields[] = [
    { name: 'a', password: '{PLAIN}x' },
    { name: 'a@example.org', password: '' },
    { name: 'b', password: '$6$s$h', uid: 10, gid: 20, gecos: 'B Person', home: '/home/b', shell: '/bin/false' },
    { name: 'c', password: '{PLAIN}x', home: '/h', extraFields: [{ key: 'userdb_quota_rule', value: '*:storage=1G' }, { key: 'nologin', value: undefined }] },
    { name: 'd', password: '{PLAIN}x', uid: 0 },
  ];
  for (const fields of cases) {
    const line = formatPasswdLine(fields);
    const parsed = parsePasswdLine(line, 1);
    t.equal(parsed.kind, 'entry', line);
    if (parsed.kind !== 'entry') continue;
    t.match(parsed.entry, { ...fields, extraFields: fields.extraFields ?? [] }, line);
    t.equal(formatPasswdLine(parsed.entry), line, 'stable');
  }
  t.equal(formatPasswdLine({ name: 'a', password: '{PLAIN}x' }), 'a:{PLAIN}x');
  t.equal(formatPasswdLine({ name: 'a', password: 'p', uid: 1 }), 'a:p:1');
  t.equal(formatPasswdLine({ name: 'a', password: 'p', extraFields: [{ key: 'k', value: 'v' }] }), 'a:p::::::k=v');
  // Every line of the fixture survives parse and format unchanged in meaning.
  for (const entry of parsePasswdFile(fixture('dovecot.passwd')).entries) {
    const again = parsePasswdLine(formatPasswdLine(entry), entry.line);
    t.same(again.kind === 'entry' ? again.entry : undefined, entry, entry.name);
  }
});

t.test('formatPasswdLine refuses what the format cannot hold', async (t) => {
  t.throws(() => formatPasswdLine({ name: 'a b', password: 'x' }), RangeError);
  t.throws(() => formatPasswdLine({ name: 'a', password: 'x:y' }), RangeError);
  t.throws(() => formatPasswdLine({ name: 'a', password: 'x\ny' }), RangeError);
  t.throws(() => formatPasswdLine({ name: 'a', password: 'x', gecos: 'a:b' }), RangeError);
  t.throws(() => formatPasswdLine({ name: 'a', password: 'x', extraFields: [{ key: 'k', value: 'a b' }] }), RangeError);
  t.throws(() => formatPasswdLine({ name: 'a', password: 'x', extraFields: [{ key: 'k=', value: 'v' }] }), RangeError);
});
