/**
 * The library surface: createServer puts POP3 and SMTP on one store, so a
 * message accepted over SMTP is at once readable over POP3, on a real
 * Maildir, through real sockets.
 */
import t from 'tap';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as maildird from '../src/index.js';
import { LineClient } from './helpers/pop3-client.js';
import { SmtpTestClient } from './helpers/smtp-client.js';

t.test('the surface names the ports, stores and front-ends', async (t) => {
  for (const name of ['createServer', 'createPop3Server', 'createSmtpServer', 'MaildirStore', 'MemoryStore', 'UserDatabase', 'StorageError', 'deliverLocal']) {
    t.type((maildird as Record<string, unknown>)[name], 'function', name);
  }
});

t.test('createServer: SMTP in, POP3 out, one Maildir store, no glue', async (t) => {
  const root = t.testdir();
  const store = await maildird.MaildirStore.open({ root });
  const users = maildird.UserDatabase.fromEntries([{ name: 'alice', password: '{PLAIN}secret' }], {
    localDomains: ['example.org'],
    dummyHash: '{PLAIN}x',
  });
  const server = maildird.createServer({ store, users, smtp: { localDomains: ['example.org'], hostname: 'mx.test', reverseLookup: false } });
  t.teardown(async () => {
    await server.close();
    await store.close();
  });
  const pop3 = await server.pop3!.listen(0, '127.0.0.1');
  const smtpAddress = await server.smtp!.listen({ port: 0, host: '127.0.0.1' });
  const smtpPort = typeof smtpAddress === 'string' ? Number.NaN : smtpAddress.port;

  const smtp = await SmtpTestClient.connect(smtpPort);
  await smtp.ehlo();
  t.equal((await smtp.command('MAIL FROM:<bob@remote.example>')).code, 250);
  t.equal((await smtp.command('RCPT TO:<alice@example.org>')).code, 250);
  t.equal((await smtp.command('DATA')).code, 354);
  const done = await smtp.command('Subject: hello\r\n\r\nline one\r\n..dotted\r\n.');
  t.equal(done.code, 250, done.raw);
  await smtp.quit();

  // Acknowledged means on disk in new/.
  t.equal((await readdir(join(root, 'alice', 'new'))).length, 1);

  const pop = await LineClient.connect(pop3.port);
  await pop.expect(/^\+OK/);
  await pop.command('USER alice', /^\+OK/);
  await pop.command('PASS secret', /^\+OK/);
  await pop.command('STAT', /^\+OK 1 \d+$/);
  await pop.command('RETR 1', /^\+OK/);
  const body = (await pop.body()).toString('utf8');
  t.match(body, /^Return-Path: <bob@remote\.example>\r\nReceived: from /);
  t.match(body, /\r\nSubject: hello\r\n\r\nline one\r\n\.dotted\r\n$/, 'the sent text, unstuffed by SMTP, restuffed and unstuffed by POP3');
  await pop.command('QUIT', /^\+OK/);
});
