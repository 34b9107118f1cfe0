import t from 'tap';
import { AliasTable, parseAliases } from '../../src/smtp/aliases.js';
import { ConfigError } from '../../src/errors.js';

t.test('parses the aliases(5) form', async (t) => {
  const map = parseAliases(
    [
      '# comment',
      '',
      'Postmaster: alice',
      'sales:  bob, carol@example.org,',
      '   dave , bob',
      'abuse@Example.org: alice',
      '  # an indented comment is skipped',
      'x: y\r',
    ].join('\n'),
  );
  t.same([...map.keys()], ['postmaster', 'sales', 'abuse@example.org', 'x']);
  t.same(map.get('sales'), ['bob', 'carol@example.org', 'dave'], 'continuation lines add targets; duplicates go');
  t.same(map.get('x'), ['y'], 'CRLF files work');
});

t.test('refuses what it does not support, naming the line', async (t) => {
  const bad: [string, RegExp][] = [
    ['root: |/usr/bin/evil', /line 1: .*program, file and :include:/],
    ['root: /etc/passwd', /line 1: .*not supported/],
    ['root: :include:/etc/list', /line 1: .*not supported/],
    ['a: b\na: c', /line 2: alias "a" is defined twice/],
    ['nocolon', /line 1: expected/],
    [': b', /line 1: expected/],
    ['a:', /line 1: alias "a" has no targets/],
    ['  b', /line 1: continuation line without an alias/],
    ['a b: c', /line 1: bad alias name/],
    ['a: "quoted"', /line 1: bad target/],
    ['a: b c', /line 1: bad target/],
  ];
  for (const [text, message] of bad) {
    t.throws(() => parseAliases(text), ConfigError, text);
    t.throws(() => parseAliases(text), { message }, text);
  }
});

t.test('AliasTable: full-address keys first, case-insensitive, reload keeps the old table on error', async (t) => {
  const table = new AliasTable('info: alice\ninfo@b.example: bob\n');
  t.same(table.expand('INFO', 'a.example'), ['alice']);
  t.same(table.expand('info', 'B.example'), ['bob']);
  t.equal(table.expand('nobody', 'a.example'), undefined);
  t.throws(() => table.reload('broken'), ConfigError);
  t.same(table.expand('info', 'a.example'), ['alice'], 'old table kept');
  table.reload('info: carol\n');
  t.same(table.expand('info', 'b.example'), ['carol']);
  t.equal(table.size, 1);
});
