import t from 'tap';
import { readdirSync } from 'node:fs';
import { COMMAND_TABLE, COMMANDS } from '../../../src/pop3/commands/index.ts';

t.test('one table entry per command module, verbs upper case and unique', async (t) => {
  const files = readdirSync(new URL('../../../src/pop3/commands/', import.meta.url))
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
    .map((f) => f.replace(/\.ts$/, '').toUpperCase());
  t.same(COMMANDS.map((c) => c.verb).sort(), files.sort(), 'every commands/<verb>.ts is in the table');
  t.equal(COMMAND_TABLE.size, COMMANDS.length);
  for (const command of COMMANDS) {
    t.match(command.verb, /^[A-Z0-9]{3,4}$/, "RFC 1939 keywords are 3 or 4 characters");
    t.ok(command.states.length > 0, `${command.verb} has states`);
    t.notOk((command.states as readonly string[]).includes('UPDATE'), 'UPDATE runs no client commands');
  }
  t.ok(Object.isFrozen(COMMANDS));
});

t.test('RFC 1939 commands are all present', async (t) => {
  for (const verb of ['USER', 'PASS', 'APOP', 'STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'QUIT']) {
    t.ok(COMMAND_TABLE.has(verb), verb);
  }
});
