import t from 'tap';
import { AliasTable } from '../../src/smtp/aliases.js';
import { RecipientPolicy, unquoteLocalPart } from '../../src/smtp/recipient-policy.js';
import { codeOf } from '../helpers/smtp-client.js';
import { DOMAIN, delivered, startSmtp, testUsers } from '../helpers/smtp-setup.js';

function policy(aliases = ''): RecipientPolicy {
  return new RecipientPolicy({
    users: testUsers(),
    localDomains: [DOMAIN, 'Example.NET.'],
    aliases: new AliasTable(aliases),
  });
}

function outcome(p: RecipientPolicy, address: string): string {
  const r = p.resolve(address);
  return r.ok ? r.users.map((u) => u.name).join(',') : `${r.reply.replyCode} ${r.reply.enhancedCode}`;
}

t.test('local users of local domains, subaddresses, domain case', async (t) => {
  const p = policy();
  t.equal(outcome(p, 'alice@example.org'), 'alice');
  t.equal(outcome(p, 'alice@EXAMPLE.ORG'), 'alice');
  t.equal(outcome(p, 'alice@example.net'), 'alice', 'a bare user is valid in every local domain');
  t.equal(outcome(p, 'alice+lists@example.org'), 'alice');
  t.equal(outcome(p, 'alice+@example.org'), 'alice');
  t.equal(outcome(p, '+alice@example.org'), '550 5.1.1');
  t.equal(outcome(p, 'nobody@example.org'), '550 5.1.1');
  t.equal(outcome(p, 'carol@other.example'), 'carol@other.example', "a full-address user's domain is local for that user");
  t.equal(outcome(p, 'dave@other.example'), '554 5.7.1', 'but not for anyone else');
  t.equal(outcome(p, 'carol@example.org'), '550 5.1.1', 'carol lives in other.example only');
  t.equal(outcome(p, 'postmaster'), 'postmaster', 'domainless postmaster (RFC 5321 4.1.1.3)');
  t.equal(outcome(p, '"alice"@example.org'), 'alice', 'a quoted local part is its content');
  t.equal(outcome(p, 'alice@xn--exmple-cua.org'), '554 5.7.1');
});

t.test('never a relay: the classic relay-test address forms', async (t) => {
  const p = policy();
  const forms: [string, string][] = [
    ['someone@remote.example', '554 5.7.1'],
    ['alice%remote.example@example.org', '550 5.1.1'], // percent hack
    ['alice%example.org@remote.example', '554 5.7.1'],
    ['remote.example!alice@example.org', '550 5.1.1'], // bang path
    ['alice@remote.example@example.org', '550 5.1.1'],
    ['"alice@remote.example"@example.org', '550 5.1.1'], // quoted local part hiding an address
    ['"alice%remote.example"@example.org', '550 5.1.1'],
    ['"alice"@remote.example', '554 5.7.1'],
    ['alice@[127.0.0.1]', '554 5.7.1'], // address literal
    ['alice@example.org.remote.example', '554 5.7.1'],
    ['"unterminated@example.org', '550 5.1.1'],
  ];
  for (const [address, expected] of forms) t.equal(outcome(p, address), expected, address);
});

t.test('never a relay: trailing and doubled dots (issue 6 abuse list)', async (t) => {
  const p = policy();
  // A trailing dot names the same domain (a root-anchored FQDN): never a way to reach a remote one.
  const remote: string[] = [
    'relay-test@remote.example.',
    'relay-test@remote.example..',
    'alice@example.org.remote.example.',
    'carol@other.example..',
    'dave@other.example.',
    'alice@.example.org',
    'alice@example..org',
  ];
  for (const address of remote) t.notMatch(outcome(p, address), /^(alice|carol|relay)/, `${address}: not delivered anywhere`);
  for (const address of remote) t.match(outcome(p, address), /^5\d\d 5\.\d\.\d$/, `${address}: refused`);
  const hidden: string[] = [
    'alice%remote.example.@example.org',
    'remote.example.!alice@example.org',
    '"alice@remote.example."@example.org',
    'alice@remote.example.@example.org',
  ];
  for (const address of hidden) t.equal(outcome(p, address), '550 5.1.1', `${address}: no local user of that name`);
  t.equal(outcome(p, 'alice@example.org.'), 'alice', 'a local domain with its root dot is that local domain');
  t.equal(outcome(p, 'carol@other.example.'), 'carol@other.example');
});

t.test('aliases: lists, nesting, full-address keys, loops, non-local targets never relay', async (t) => {
  const p = policy(
    [
      'staff: alice, bob',
      'sales@example.net: carol@other.example',
      'team: staff, nobody-here',
      'loop1: loop2',
      'loop2: loop1',
      'outside: someone@remote.example',
      'mixed: someone@remote.example, bob',
    ].join('\n'),
  );
  t.equal(outcome(p, 'staff@example.org'), 'alice,bob');
  t.equal(outcome(p, 'staff+x@example.net'), 'alice,bob');
  t.equal(outcome(p, 'sales@example.net'), 'carol@other.example');
  t.equal(outcome(p, 'sales@example.org'), '550 5.1.1', 'a full-address key holds for its domain only');
  t.equal(outcome(p, 'team@example.org'), 'alice,bob', 'unknown targets are skipped');
  t.equal(outcome(p, 'loop1@example.org'), '550 5.1.1', 'a loop ends at the depth limit');
  t.equal(outcome(p, 'outside@example.org'), '550 5.1.1', 'an alias to another domain does not relay');
  t.equal(outcome(p, 'mixed@example.org'), 'bob');
  t.equal(outcome(policy('alice: bob'), 'alice@example.org'), 'bob', 'aliases come before users (as in aliases(5))');
});

t.test('unquoteLocalPart', async (t) => {
  t.equal(unquoteLocalPart('plain'), 'plain');
  t.equal(unquoteLocalPart('"a b"'), 'a b');
  t.equal(unquoteLocalPart('"a\\"b"'), 'a"b');
  t.equal(unquoteLocalPart('"a"b"'), undefined);
  t.equal(unquoteLocalPart('"ab\\"'), undefined);
  t.equal(unquoteLocalPart('"'), undefined);
});

t.test('over a real socket: relay attempts are refused and nothing is delivered anywhere', async (t) => {
  const h = await startSmtp(t, { aliases: new AliasTable('staff: alice, bob\n') });
  const c = await h.connect();
  await c.ehlo();
  await c.command('MAIL FROM:<probe@remote.example>');
  const attempts: [string, string][] = [
    ['<relay-test@remote.example>', '554 5.7.1'],
    ['<alice%remote.example@example.org>', '550 5.1.1'],
    ['<remote.example!alice@example.org>', '550 5.1.1'],
    ['<"alice@remote.example"@example.org>', '501 5.1.3'], // smtp-server's parser refuses it
    ['<"alice%remote.example"@example.org>', '550 5.1.1'],
    ['<@example.org:relay-test@remote.example>', '554 5.7.1'], // source route: the last hop counts
    ['<@example.org,@mx.example.org:relay-test@remote.example>', '554 5.7.1'],
    ['<alice@remote.example.>', '501 5.1.3'], // trailing dot
    ['<alice.@example.org>', '501 5.1.3'],
    ['<alice@[192.0.2.1]>', '554 5.7.1'],
    ['<ALICE@example.org>', '550 5.1.1'], // user names are case-sensitive unless configured
  ];
  for (const [rcpt, expected] of attempts) t.equal(codeOf(await c.command(`RCPT TO:${rcpt}`)), expected, rcpt);
  t.equal(codeOf(await c.command('RCPT TO:<@relay.example:staff@example.org>')), '250 2.1.5', 'a source route to a local address is just that address');
  t.equal(codeOf(await c.command('RCPT TO:<Postmaster>')), '250 2.1.5', 'RFC 5321: postmaster without a domain');
  t.equal((await c.command('DATA')).code, 354);
  c.write('Subject: probe\r\n\r\nx\r\n.\r\n');
  t.equal(codeOf(await c.reply()), '250 2.0.0');
  await c.quit();
  t.equal((await delivered(h.root ?? '', 'alice')).length, 1);
  t.equal((await delivered(h.root ?? '', 'bob')).length, 1);
  t.equal((await delivered(h.root ?? '', 'postmaster')).length, 1);
});
