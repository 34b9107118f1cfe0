import t from 'tap';
import { createHmac } from 'node:crypto';
import { messages, startPop3, TEST_CA, TEST_TLS } from '../../helpers/pop3-harness.ts';
import { captureLogger } from '../../helpers/maildir-tree.ts';
import { ManualTimers } from '../../helpers/pop3-timers.ts';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

t.test('AUTH PLAIN with an initial response, and after an empty challenge', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', mail: { alice: messages(1) } });
  const { client } = await h.connect();
  await client.command(`AUTH PLAIN ${b64('\0alice\0wrong')}`, '-ERR [AUTH] Authentication failed');
  await client.command(`AUTH PLAIN ${b64('\0alice\0secret')}`, /^\+OK Logged in, maildrop has 1 message/);
  t.match(h.events.find((e) => e.name === 'login')?.payload, { user: 'alice', mechanism: 'SASL PLAIN' });
  const second = await h.connect();
  await second.client.command('auth plain', '+ ');
  await second.client.command(b64('bob\0bob\0hunter2'), /^\+OK Logged in/);
});

t.test('AUTH LOGIN prompts for user name and password; the user name may come first', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  const prompt = await client.command('AUTH LOGIN', /^\+ /);
  t.equal(unb64(prompt.slice(2)), 'Username:');
  const pw = await client.command(b64('alice'), /^\+ /);
  t.equal(unb64(pw.slice(2)), 'Password:');
  await client.command(b64('secret'), /^\+OK Logged in/);
  const second = await h.connect();
  await second.client.command(`AUTH LOGIN ${b64('bob')}`, `+ ${b64('Password:')}`);
  await second.client.command(b64('hunter2'), /^\+OK Logged in/);
});

t.test('AUTH CRAM-MD5: HMAC-MD5 of the challenge with the PLAIN secret', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false, cramMd5: true } });
  const { client } = await h.connect();
  const line = await client.command('AUTH CRAM-MD5', /^\+ /);
  const challenge = unb64(line.slice(2));
  t.match(challenge, /^<\d+\.\d+@pop\.test>$/);
  const digest = createHmac('md5', 'secret').update(challenge).digest('hex');
  await client.command(b64(`alice ${digest}`), /^\+OK Logged in/);
  const again = await h.connect();
  await again.client.command('AUTH CRAM-MD5', /^\+ /);
  await again.client.command(b64(`alice ${'0'.repeat(32)}`), '-ERR [AUTH] Authentication failed');
  await again.client.command(`AUTH CRAM-MD5 ${b64('x')}`, '-ERR [AUTH] Authentication failed');
});

t.test('* cancels; bad base64 is refused; the session goes on', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const { client } = await h.connect();
  await client.command('AUTH PLAIN', '+ ');
  await client.command('*', '-ERR Authentication cancelled');
  await client.command('AUTH LOGIN', /^\+ /);
  await client.command('not base64!', '-ERR Invalid base64 data in response');
  await client.command('AUTH PLAIN ====', '-ERR Invalid base64 data in response');
  await client.command('AUTH PLAIN *', '-ERR Authentication cancelled');
  await client.command(`AUTH PLAIN ${b64('no separators')}`, '-ERR [AUTH] Authentication failed');
  await client.command(`AUTH PLAIN ${b64('bob\0alice\0secret')}`, '-ERR [AUTH] Authentication failed');
  await client.command('AUTH PLAIN =', '-ERR [AUTH] Authentication failed', );
  t.equal(await client.closed(), '', 'an empty initial response is an empty PLAIN message: the third failure closes');
});

t.test('mechanism checks and the listing form', async (t) => {
  const h = await startPop3(t, { kind: 'maildir', server: { isLoopbackSecure: false, tls: TEST_TLS, cramMd5: true } });
  const { client } = await h.connect();
  await client.command('AUTH GSSAPI', '-ERR Unsupported authentication mechanism');
  await client.command('AUTH PLAIN a b', '-ERR Too many arguments');
  await client.command(
    `AUTH PLAIN ${b64('\0alice\0secret')}`,
    '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections',
  );
  await client.command('AUTH', '+OK Authentication mechanisms follow');
  t.same(await client.lines(), ['CRAM-MD5'], 'only CRAM-MD5 before TLS');
  client.send('CAPA');
  await client.expect(/^\+OK/);
  t.ok((await client.lines()).includes('SASL CRAM-MD5'));
  await client.command('STLS', /^\+OK/);
  await client.startTls(TEST_CA);
  await client.command('AUTH', '+OK Authentication mechanisms follow');
  t.same(await client.lines(), ['PLAIN', 'LOGIN', 'CRAM-MD5']);
  await client.command(`AUTH PLAIN ${b64('\0alice\0secret')}`, /^\+OK Logged in/);
  await client.command('AUTH PLAIN', '-ERR AUTH is not valid in the TRANSACTION state');

  const limited = await startPop3(t, { kind: 'maildir', server: { saslMechanisms: ['plain'] } });
  const second = await limited.connect();
  await second.client.command('AUTH LOGIN', '-ERR Unsupported authentication mechanism');
  second.client.send('CAPA');
  await second.client.expect(/^\+OK/);
  t.ok((await second.client.lines()).includes('SASL PLAIN'));
});

t.test('CRAM-MD5 (turned on) is not offered when nobody has a PLAIN password', async (t) => {
  const h = await startPop3(t, {
    kind: 'maildir',
    users: [{ name: 'dave', password: '{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=' }],
    server: { isLoopbackSecure: false, cramMd5: true },
  });
  const { client } = await h.connect();
  client.send('CAPA');
  await client.expect(/^\+OK/);
  t.notOk((await client.lines()).some((l) => l.startsWith('SASL')), 'no mechanism at all here');
  await client.command('AUTH CRAM-MD5', '-ERR Unsupported authentication mechanism');
});

t.test('AUTH payloads never reach the log', async (t) => {
  const { logger, records } = captureLogger('debug');
  const h = await startPop3(t, { kind: 'maildir', server: { logger } });
  const { client } = await h.connect();
  await client.command(`AUTH PLAIN ${b64('\0alice\0secret')}`, /^\+OK/);
  const other = await h.connect();
  await other.client.command('AUTH LOGIN', /^\+ /);
  await other.client.command(b64('bob'), /^\+ /);
  await other.client.command(b64('hunter2'), /^\+OK/);
  const all = JSON.stringify(records);
  t.notMatch(all, new RegExp(b64('\0alice\0secret').replace(/[+/=]/g, '.')));
  t.notMatch(all, /hunter2/);
  t.notMatch(all, new RegExp(b64('hunter2').replace(/[+/=]/g, '.')));
  t.ok(records.some((r) => r.msg === 'C: AUTH PLAIN ***'));
  t.ok(records.some((r) => r.msg === 'C: ***'));
});

t.test('a long SASL response line is accepted up to its own limit', async (t) => {
  const long = 'p'.repeat(600);
  const h = await startPop3(t, { kind: 'maildir', users: [{ name: 'erin', password: `{PLAIN}${long}` }] });
  const { client } = await h.connect();
  await client.command('AUTH PLAIN', '+ ');
  await client.command(b64(`\0erin\0${long}`), /^\+OK Logged in/);
});

t.test('a timeout or a shutdown in the middle of an exchange is answered and ends the session', async (t) => {
  const timers = new ManualTimers();
  const h = await startPop3(t, { kind: 'memory', server: { timers } });
  const { client } = await h.connect();
  const ended = h.sessionEnd();
  await client.command('AUTH PLAIN', '+ ');
  await timers.waitFor('idle');
  timers.fire('idle');
  await client.expect('-ERR Disconnected for inactivity');
  await client.closed();
  t.equal((await ended).reason, 'idle-timeout');
  const second = await h.connect();
  const secondEnded = h.sessionEnd();
  await second.client.command('AUTH LOGIN', /^\+ /);
  const closing = h.server.close();
  await second.client.expect('-ERR [SYS/TEMP] Server shutting down');
  await closing;
  t.equal((await secondEnded).reason, 'shutdown');
});
