/**
 * The session loop: dispatch, state checks, bad input, pipelining, limits,
 * timeouts, the end-of-session paths, the trace and the summary line. Over
 * real sockets, on every store kind where storage is touched.
 */
import t from 'tap';
import { COMMANDS } from '../../src/pop3/commands/index.ts';
import { ManualTimers } from '../helpers/pop3-timers.ts';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import { messages, startPop3, STORE_KINDS } from '../helpers/pop3-harness.ts';
import { captureLog } from '../helpers/log-capture.ts';

function capturingLogger() {
  const { logger, lines } = captureLog('debug');
  return { logger, lines, messages: () => lines.map((l) => String(l.msg)) };
}

t.test('greeting: +OK and the text; an APOP timestamp only when APOP is on', async (t) => {
  const plain = await startPop3(t, { kind: 'maildir' });
  const { greeting } = await plain.connect();
  t.equal(greeting, '+OK maildird POP3 server ready');
  const apop = await startPop3(t, { kind: 'maildir', server: { apop: true, greeting: 'hello there' } });
  const second = await apop.connect();
  t.match(second.greeting, /^\+OK hello there <\d+\.\d+@pop\.test>$/);
  const third = await apop.connect();
  t.not(third.greeting, second.greeting, 'each greeting has its own timestamp');
});

t.test('unknown, empty and unprintable commands get -ERR and the session goes on', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  await client.command('FROB', '-ERR Unknown command: FROB');
  await client.command('frob x y', '-ERR Unknown command: FROB');
  await client.command('', '-ERR Unknown command');
  await client.command(' STAT', '-ERR Unknown command');
  client.sendRaw(Buffer.from([0xff, 0xfe, 0x0d, 0x0a]));
  await client.expect('-ERR Unknown command');
  await client.command('CAPA', '+OK Capability list follows');
  await client.lines();
  await client.command('QUIT', '+OK maildird POP3 server signing off');
  await client.closed();
});

t.test('each command outside its states gets -ERR naming the state', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(1) } });
  const { client } = await h.connect();
  const transactionOnly = COMMANDS.filter((c) => !c.states.includes('AUTHORIZATION')).map((c) => c.verb);
  t.same(transactionOnly.sort(), ['DELE', 'LIST', 'NOOP', 'RETR', 'RSET', 'STAT', 'TOP', 'UIDL']);
  for (const verb of transactionOnly) {
    await client.command(`${verb} 1`, `-ERR ${verb} is not valid in the AUTHORIZATION state`);
  }
  await client.command('QUIT', /^\+OK/);
  const logged = await h.login();
  const authorizationOnly = COMMANDS.filter((c) => !c.states.includes('TRANSACTION')).map((c) => c.verb);
  t.same(authorizationOnly.sort(), ['APOP', 'AUTH', 'PASS', 'STLS', 'USER', 'UTF8']);
  for (const verb of authorizationOnly) {
    await logged.command(`${verb} x`, `-ERR ${verb} is not valid in the TRANSACTION state`);
  }
  await logged.command('NOOP', '+OK');
});

t.test('too many bad commands close the connection', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { limits: { maxBadCommands: 3 } } });
  const { client } = await h.connect();
  const ended = h.sessionEnd();
  client.send('A', 'B', 'C', 'NOOP');
  await client.expect('-ERR Unknown command: A');
  await client.expect('-ERR Unknown command: B');
  await client.expect('-ERR Unknown command: C');
  await client.expect('-ERR Too many bad commands, closing connection');
  t.equal(await client.closed(), '', 'the pipelined NOOP is not answered');
  t.equal((await ended).reason, 'bad-commands');
});

t.test('an over-long line is refused and discarded; the next command works', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  client.sendRaw(`USER ${'a'.repeat(300)}\r\nCAPA\r\n`);
  await client.expect('-ERR Command line too long');
  await client.expect('+OK Capability list follows');
  await client.lines();
  client.sendRaw(`${'x'.repeat(251)}\r\n`); // 253 octets with CRLF: under the limit
  await client.expect('-ERR Unknown command');
  client.sendRaw(`${'x'.repeat(254)}\r\n`); // 256 octets: over
  await client.expect('-ERR Command line too long');
});

for (const kind of STORE_KINDS) {
  t.test(`${kind}: a whole session in one write is answered in order`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(3) } });
    const { client } = await h.connect();
    client.sendRaw(
      [
        'CAPA',
        'USER alice',
        'PASS secret',
        'STAT',
        'LIST',
        'UIDL 2',
        'RETR 1',
        'TOP 2 0',
        'DELE 3',
        'LIST 3',
        'STAT',
        'NOOP',
        'QUIT',
        '',
      ].join('\r\n'),
    );
    await client.expect('+OK Capability list follows');
    t.ok((await client.lines()).includes('PIPELINING'));
    await client.expect('+OK');
    await client.expect('+OK Logged in, maildrop has 3 messages (123 octets)');
    await client.expect('+OK 3 123');
    await client.expect('+OK 3 messages (123 octets)');
    t.same(await client.lines(), ['1 41', '2 41', '3 41']);
    await client.expect(/^\+OK 2 \S+$/);
    await client.expect('+OK 41 octets');
    t.equal((await client.body()).toString(), 'Subject: message 1\r\n\r\nbody of message 1\r\n');
    await client.expect('+OK Top of message follows');
    t.equal((await client.body()).toString(), 'Subject: message 2\r\n\r\n');
    await client.expect('+OK Message 3 deleted');
    await client.expect('-ERR Message 3 already deleted');
    await client.expect('+OK 2 82');
    await client.expect('+OK');
    await client.expect('+OK maildird POP3 server signing off (1 message deleted)');
    t.equal(await client.closed(), '');
    const again = await h.login();
    await again.command('STAT', '+OK 2 82');
  });

  t.test(`${kind}: numbering never shifts after DELE`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(4) } });
    const client = await h.login();
    client.send('UIDL');
    await client.expect(/^\+OK/);
    const uidls = (await client.lines()).map((l) => l.split(' ')[1]);
    await client.command('DELE 2', '+OK Message 2 deleted');
    client.send('LIST');
    await client.expect('+OK 3 messages (123 octets)');
    t.same(await client.lines(), ['1 41', '3 41', '4 41']);
    client.send('UIDL');
    await client.expect(/^\+OK/);
    t.same(await client.lines(), [`1 ${uidls[0]}`, `3 ${uidls[2]}`, `4 ${uidls[3]}`]);
    client.send('RETR 3');
    await client.expect('+OK 41 octets');
    t.match((await client.body()).toString(), /message 3/);
    await client.command('RETR 2', '-ERR Message 2 already deleted');
    await client.command('TOP 2 1', '-ERR Message 2 already deleted');
    await client.command('DELE 2', '-ERR Message 2 already deleted');
    await client.command('UIDL 2', '-ERR Message 2 already deleted');
    await client.command('LIST 4', '+OK 4 41');
    await client.command('DELE 4', '+OK Message 4 deleted');
    await client.command('LIST 3', '+OK 3 41');
  });

  t.test(`${kind}: a dropped connection deletes nothing and releases the lock`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(2) } });
    const client = await h.login();
    await client.command('DELE 1', '+OK Message 1 deleted');
    await client.command('DELE 2', '+OK Message 2 deleted');
    const ended = h.sessionEnd();
    client.destroy();
    const summary = await ended;
    t.equal(summary.reason, 'eof');
    t.equal(summary.deleted, 0);
    const again = await h.login();
    await again.command('STAT', '+OK 2 82');
    t.notOk(h.events.some((e) => e.name === 'delete'), 'no delete event');
  });

  t.test(`${kind}: the idle timeout ends the session, deleting nothing`, async (t) => {
    const timers = new ManualTimers();
    const h = await startPop3(t, { kind, mail: { alice: messages(1) }, server: { timers } });
    const client = await h.login();
    await client.command('DELE 1', '+OK Message 1 deleted');
    const ended = h.sessionEnd();
    await timers.waitFor('idle');
    timers.fire('idle');
    await client.expect('-ERR Disconnected for inactivity');
    await client.closed();
    t.equal((await ended).reason, 'idle-timeout');
    const again = await h.login();
    await again.command('STAT', '+OK 1 41');
  });

  t.test(`${kind}: server close() ends sessions with [SYS/TEMP], deleting nothing`, async (t) => {
    const h = await startPop3(t, { kind, mail: { alice: messages(1) } });
    const client = await h.login();
    await client.command('DELE 1', '+OK Message 1 deleted');
    const ended = h.sessionEnd();
    const closing = h.server.close();
    await client.expect('-ERR [SYS/TEMP] Server shutting down');
    await client.closed();
    await closing;
    t.equal((await ended).reason, 'shutdown');
    const maildrop = await h.store.openMaildrop(h.users.lookup('alice')!);
    t.equal(maildrop.messages.length, 1, 'the message is still there and the lock is free');
    await maildrop.release();
  });
}

t.test('a started line must be finished before the line deadline', async (t) => {
  const timers = new ManualTimers();
  const h = await startPop3(t, { kind: 'maildir', server: { timers } });
  const { client } = await h.connect();
  const ended = h.sessionEnd();
  client.sendRaw('US');
  await timers.waitFor('line');
  client.sendRaw('E');
  timers.fire('line');
  await client.expect('-ERR Command line not finished in time');
  await client.closed();
  t.equal((await ended).reason, 'line-timeout');
});

t.test('invalid UTF-8 in UTF8 mode is refused', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  await client.command('UTF8', '+OK UTF8 enabled');
  client.sendRaw(Buffer.concat([Buffer.from('USER '), Buffer.from([0xc3, 0x28]), Buffer.from('\r\n')]));
  await client.expect('-ERR Invalid UTF-8 in command');
});

t.test('the trace shows commands and replies with secrets masked; one info line per session', async (t) => {
  const log = capturingLogger();
  const h = await startPop3(t, {
    kind: 'maildir',
    mail: { alice: messages(2) },
    server: { logger: log.logger, apop: true },
  });
  const { client } = await h.connect();
  await client.command('USER alice', '+OK');
  await client.command('PASS wrong password', '-ERR [AUTH] Authentication failed');
  await client.command('APOP alice 0123456789abcdef0123456789abcdef', '-ERR [AUTH] Authentication failed');
  await client.command('USER alice', '+OK');
  await client.command('PASS secret', /^\+OK/);
  client.send('RETR 1');
  await client.expect(/^\+OK 41 octets/);
  await client.body();
  await client.command('DELE 2', /^\+OK/);
  const ended = h.sessionEnd();
  await client.command('QUIT', /^\+OK/);
  await ended;
  const text = log.messages();
  t.ok(text.includes('C: USER alice'));
  t.ok(text.includes('C: PASS ***'));
  t.ok(text.includes('C: APOP alice ***'));
  t.ok(text.includes('S: -ERR [AUTH] Authentication failed'));
  t.ok(text.includes('S: +OK 41 octets'));
  t.ok(text.includes('S: [41 octets of message 1]'));
  const all = JSON.stringify(log.lines);
  t.notMatch(all, /wrong password/, 'the password never reaches the log');
  t.notMatch(all, /secret/);
  t.notMatch(all, /0123456789abcdef/, 'nor the APOP digest');
  const end = log.lines.filter((l) => l.msg === 'session end');
  t.equal(end.length, 1);
  t.match(end[0], {
    level: 30,
    proto: 'pop3',
    user: 'alice',
    remote: '127.0.0.1',
    tls: false,
    retrieved: 1,
    deleted: 1,
    reason: 'quit',
  });
  t.ok(Number(end[0]?.bytes) > 41);
  t.ok(log.lines.some((l) => l.msg === 'state' && l.from === 'AUTHORIZATION' && l.to === 'TRANSACTION'));
});

t.test('too many authentication failures close the connection', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { limits: { maxAuthFailures: 2 } } });
  const { client } = await h.connect();
  const ended = h.sessionEnd();
  client.send('USER alice', 'PASS a', 'USER alice', 'PASS b', 'USER alice');
  await client.expect('+OK');
  await client.expect('-ERR [AUTH] Authentication failed');
  await client.expect('+OK');
  await client.expect('-ERR [AUTH] Authentication failed');
  t.equal(await client.closed(), '');
  t.equal((await ended).reason, 'auth-failures');
  t.same(
    h.events.filter((e) => e.name === 'login-failed').map((e) => e.payload),
    [
      { sessionId: '1', login: 'alice', mechanism: 'USER', remoteAddress: '127.0.0.1' },
      { sessionId: '1', login: 'alice', mechanism: 'USER', remoteAddress: '127.0.0.1' },
    ],
  );
});

t.test('failed logins are slowed down: the delay is served before the next check', async (t) => {
  const timers = new ManualTimers();
  const throttle = new LoginThrottle({ now: () => 0 });
  const h = await startPop3(t, { kind: 'memory', server: { timers, throttle, limits: { maxAuthFailures: 10 } } });
  const { client } = await h.connect();
  await client.command('USER alice', '+OK');
  await client.command('PASS one', '-ERR [AUTH] Authentication failed');
  await client.command('USER alice', '+OK');
  await client.command('PASS two', '-ERR [AUTH] Authentication failed', );
  t.equal(timers.active('auth-delay'), 0, 'the first failure is free');
  await client.command('USER alice', '+OK');
  client.send('PASS secret');
  await timers.waitFor('auth-delay');
  t.same(timers.durations('auth-delay'), [1000]);
  timers.fire('auth-delay');
  await client.expect(/^\+OK Logged in/);
  t.equal(throttle.attemptDelayMs('127.0.0.1', 'alice'), 0, 'a success resets the address and the user');
});

t.test('trace: false keeps commands out of a debug log', async (t) => {
  const log = capturingLogger();
  const h = await startPop3(t, { kind: 'memory', server: { logger: log.logger, trace: false } });
  const { client } = await h.connect();
  const ended = h.sessionEnd();
  await client.command('QUIT', /^\+OK/);
  await ended;
  t.notOk(log.messages().some((m) => m.startsWith('C: ') || m.startsWith('S: ')));
  t.ok(log.messages().includes('session end'));
});

t.test('a client that sends commands but never reads the replies is waited for, then dropped', async (t) => {
  const timers = new ManualTimers();
  const h = await startPop3(t, { kind: 'memory', server: { timers, limits: { writeHighWaterMark: 16 * 1024 } } });
  const { client } = await h.connect();
  client.socket.pause();
  const ended = h.sessionEnd();
  const batch = 'CAPA\r\n'.repeat(2000);
  // Write until the server stops taking our input or waits for us to read.
  for (let i = 0; i < 1000 && timers.active('drain') === 0; i++) {
    if (!client.socket.write(batch)) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await timers.waitFor('drain');
  timers.fire('drain');
  t.equal((await ended).reason, 'error', 'dropped after the write stall');
});

t.test('random input never crashes the server; the next session works', async (t) => {
  const h = await startPop3(t, { kind: 'memory', mail: { alice: messages(3) }, server: { limits: { maxBadCommands: 1_000_000 } } });
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const verbs = ['USER', 'PASS', 'APOP', 'AUTH', 'STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'CAPA', 'STLS', 'UTF8', 'XYZ', ''];
  const junk = ['1', '0', '-1', '99999999999999999999', 'alice', 'secret', 'PLAIN', '*', '=', '\u0000', '\u00ff\u00fe', ' ', 'AGFsaWNlAHNlY3JldA==', '\t', '.', '..'];
  for (let round = 0; round < 20; round++) {
    const { client } = await h.connect();
    const lines: string[] = [];
    for (let i = 0; i < 50; i++) {
      const verb = verbs[rand(verbs.length)] as string;
      const args = Array.from({ length: rand(4) }, () => junk[rand(junk.length)]).join(' ');
      lines.push(rand(10) === 0 ? `${verb}${args}` : `${verb} ${args}`);
    }
    if (round % 2 === 0) lines.splice(rand(lines.length), 0, 'USER alice', 'PASS secret');
    client.sendRaw(Buffer.concat([Buffer.from(lines.join(rand(2) === 0 ? '\r\n' : '\n'), 'latin1'), Buffer.from([0x0d, 0x0a])]));
    const ended = h.sessionEnd();
    client.end();
    await ended;
  }
  const client = await h.login();
  client.send('STAT');
  await client.expect(/^\+OK \d+ \d+$/);
  t.pass('still serving');
});
