/**
 * SIGHUP reload: users file, aliases file and certificate pair re-read without dropping
 * connections; a broken new file is refused with a log line and the old
 * one kept. First the Reloader in process (deterministic: no watcher), then
 * a `maildird serve` child with live POP3, POP3S and SMTP sessions, which
 * is where the SIGHUP handler itself runs (tap's own signal handling owns
 * the test process's signals).
 */
import t from 'tap';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import * as path from 'node:path';
import { UserDatabase } from '../../src/auth/user-db.js';
import { ServerMetrics } from '../../src/http/server-metrics.js';
import { Reloader } from '../../src/cli/reload.js';
import { AliasesFile } from '../../src/cli/aliases-file.js';
import { silentLogger } from '../../src/log/logger.js';
import { loadTlsFiles, TlsContextHolder } from '../../src/protocol/tls.js';
import { LineClient } from '../helpers/pop3-client.js';
import { REPO, ServeProcess, portOf } from '../helpers/cli-run.js';

const TLS = path.join(REPO, 'fixtures', 'tls');
const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

t.test('Reloader: new users, aliases and certificates taken, broken ones refused, old ones kept', async (t) => {
  const dir = t.testdir({ passwd: 'alice:{PLAIN}old\n', aliases: 'postmaster: alice\n' });
  const passwd = path.join(dir, 'passwd');
  const aliasesPath = path.join(dir, 'aliases');
  const aliases = await AliasesFile.load(aliasesPath);
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  copyFileSync(path.join(TLS, 'localhost.crt'), certFile);
  copyFileSync(path.join(TLS, 'localhost.key'), keyFile);
  const users = await UserDatabase.load({ file: passwd });
  t.teardown(() => users.close());
  const holder = new TlsContextHolder(await loadTlsFiles({ certFile, keyFile }, async (f) => readFileSync(f)));
  const metrics = new ServerMetrics();
  users.onReload((event) => metrics.reloads.inc({ what: 'users', result: event.ok ? 'ok' : 'refused' }));
  const reloader = new Reloader({ users, aliases, tls: { holder, files: { certFile, keyFile } }, logger: silentLogger(), metrics });

  t.same(await reloader.reload('test'), { users: 'unchanged', aliases: 'unchanged', tls: 'ok' });

  writeFileSync(passwd, 'alice:{PLAIN}new\n');
  writeFileSync(aliasesPath, 'postmaster: alice\nsales: alice\n');
  copyFileSync(path.join(TLS, 'selfsigned.crt'), certFile);
  copyFileSync(path.join(TLS, 'selfsigned.key'), keyFile);
  const before = holder.current;
  t.same(await reloader.reload('test'), { users: 'ok', aliases: 'ok', tls: 'ok' });
  t.same(aliases.table.expand('sales', undefined), ['alice'], 'the new alias');
  t.ok(await users.verifyPassword('alice', 'new'), 'the new password works');
  t.notOk(await users.verifyPassword('alice', 'old'), 'the old one does not');
  t.not(holder.current, before, 'a new certificate context');

  writeFileSync(passwd, 'alice:{PLAIN}newer\nthis line is broken\n');
  writeFileSync(aliasesPath, 'sales: bob\n:include:/etc/other\n');
  copyFileSync(path.join(TLS, 'localhost.key'), keyFile); // no longer matches the certificate
  const kept = holder.current;
  t.same(await reloader.reload('test'), { users: 'refused', aliases: 'refused', tls: 'refused' });
  t.same(aliases.table.expand('sales', undefined), ['alice'], 'the previous aliases stay');
  t.ok(await users.verifyPassword('alice', 'new'), 'the previous users stay');
  t.equal(holder.current, kept, 'the previous certificate stays');

  const text = metrics.render();
  t.match(text, /^maildird_reloads_total\{what="users",result="ok"\} 2$/m, 'unchanged counts as a good reload');
  t.match(text, /^maildird_reloads_total\{what="users",result="refused"\} 1$/m);
  t.match(text, /^maildird_reloads_total\{what="tls",result="ok"\} 2$/m);
  t.match(text, /^maildird_reloads_total\{what="tls",result="refused"\} 1$/m);
  t.same(await new Reloader({ users, tls: undefined, logger: silentLogger(), metrics }).reload('test'), {
    users: 'refused',
    aliases: 'none',
    tls: 'none',
  }, 'nothing configured: none');
});

/** Resolve with the first stderr line after `from` (an offset) that matches. */
function logLine(serve: ServeProcess, pattern: RegExp, from: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const line = serve.stderr.slice(from).split('\n').find((l) => pattern.test(l));
      if (line !== undefined) {
        serve.child.stderr?.off('data', check);
        resolve(line);
      }
    };
    serve.child.stderr?.on('data', check);
    void serve.exited().then(() => reject(new Error(`serve exited before logging ${pattern}`)));
    check();
  });
}

async function peerFingerprint(port: number): Promise<string> {
  const socket: TLSSocket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' });
  await once(socket, 'secureConnect');
  const print = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
  socket.destroy();
  return print;
}

t.test('serve: SIGHUP under live POP3, POP3S and SMTP sessions', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({
      domains: ['example.org'],
      listeners: { pop3: '127.0.0.1:0', pop3s: '127.0.0.1:0', smtp: '127.0.0.1:0' },
      tls: { cert: 'cert.pem', key: 'key.pem' },
      aliases: 'aliases',
    }),
    passwd: 'alice:{PLAIN}wonder\n',
    aliases: 'postmaster: alice\n',
    mail: { alice: { cur: {}, new: { '1700000000.M1P1.host': 'Subject: hi\n\nHello.\n' }, tmp: {} } },
  });
  copyFileSync(path.join(TLS, 'localhost.crt'), path.join(dir, 'cert.pem'));
  copyFileSync(path.join(TLS, 'localhost.key'), path.join(dir, 'key.pem'));
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  t.match(serve.stdout, /Reload the users file and the certificate with SIGHUP\./);
  const port = (name: string) => portOf(lines.find((l) => l.name === name)?.address ?? ':0');
  t.equal(await peerFingerprint(port('pop3s')), fingerprint(path.join(TLS, 'localhost.crt')));

  // Live sessions: POP3 logged in, POP3S logged in (trusting the test CA), SMTP mid-transaction.
  const pop3 = await LineClient.connect(port('pop3'));
  await pop3.expect(/^\+OK /);
  await pop3.command('USER alice', /^\+OK/);
  await pop3.command('PASS wonder', /^\+OK/);
  const pop3s = await LineClient.connect(port('pop3s'), { tls: { ca: readFileSync(path.join(TLS, 'ca.crt')) } });
  await pop3s.expect(/^\+OK /);
  await pop3s.command('CAPA', /^\+OK/);
  await pop3s.lines();
  const smtp = await LineClient.connect(port('smtp'));
  await smtp.expect(/^220 /);
  await smtp.command('HELO client.example.net', /^250 /);
  await smtp.command('MAIL FROM:<bob@example.net>', /^250 /);

  // New password, a new alias and a new certificate pair, then SIGHUP.
  writeFileSync(path.join(dir, 'passwd'), 'alice:{PLAIN}looking-glass\n');
  writeFileSync(path.join(dir, 'aliases'), 'postmaster: alice\nsales: alice\n');
  copyFileSync(path.join(TLS, 'selfsigned.crt'), path.join(dir, 'cert.pem'));
  copyFileSync(path.join(TLS, 'selfsigned.key'), path.join(dir, 'key.pem'));
  let from = serve.stderr.length;
  serve.child.kill('SIGHUP');
  const done = await logLine(serve, /"msg":"reload done"/, from);
  t.match(done, /"reason":"SIGHUP"/);
  t.match(done, /"users":"(ok|unchanged)"/, 'the users file is new (the watcher may have read it first)');
  t.match(done, /"tls":"ok"/);
  t.match(done, /"aliases":"(ok|unchanged)"/, 'the aliases file is new (the watcher may have read it first)');
  const rcpt = await LineClient.connect(port('smtp'));
  await rcpt.expect(/^220 /);
  await rcpt.command('HELO client.example.net', /^250 /);
  await rcpt.command('MAIL FROM:<bob@example.net>', /^250 /);
  await rcpt.command('RCPT TO:<sales@example.org>', /^250 /);
  await rcpt.command('QUIT', /^221 /);

  t.equal(await peerFingerprint(port('pop3s')), fingerprint(path.join(TLS, 'selfsigned.crt')), 'new handshakes get the new certificate');
  const next = await LineClient.connect(port('pop3'));
  await next.expect(/^\+OK /);
  await next.command('USER alice', /^\+OK/);
  await next.command('PASS wonder', /^-ERR \[AUTH\]/);
  await next.command('QUIT', /^\+OK/);

  // The sessions opened before the reload carry on.
  await pop3.command('STAT', /^\+OK 1 /);
  await pop3.command('RETR 1', /^\+OK/);
  t.same(await pop3.lines(), ['Subject: hi', '', 'Hello.']);
  await pop3.command('QUIT', /^\+OK/);
  await pop3s.command('USER alice', /^\+OK/);
  await pop3s.command('PASS looking-glass', /^\+OK/);
  await pop3s.command('QUIT', /^\+OK/);
  await smtp.command('RCPT TO:<alice@example.org>', /^250 /);
  await smtp.command('DATA', /^354 /);
  await smtp.command('Subject: during a reload\r\n\r\nstill here\r\n.', /^250 /);
  await smtp.command('QUIT', /^221 /);

  const after = await LineClient.connect(port('pop3'));
  await after.expect(/^\+OK /);
  await after.command('USER alice', /^\+OK/);
  await after.command('PASS looking-glass', /^\+OK .*has 2 messages/); // the first, now Seen, and the one sent during the reload
  await after.command('QUIT', /^\+OK/);

  // A broken certificate and a broken users file: refused with a log line, the old ones kept.
  writeFileSync(path.join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
  from = serve.stderr.length;
  serve.child.kill('SIGHUP');
  const refused = await logLine(serve, /"msg":"reload done"/, from);
  t.match(refused, /"tls":"refused"/);
  t.match(serve.stderr.slice(from), /TLS certificate reload refused; keeping the previous certificate/);
  t.equal(await peerFingerprint(port('pop3s')), fingerprint(path.join(TLS, 'selfsigned.crt')), 'the previous certificate is still served');

  writeFileSync(path.join(dir, 'passwd'), 'alice:{PLAIN}broken-change\nnot a valid line\n');
  from = serve.stderr.length;
  serve.child.kill('SIGHUP');
  await logLine(serve, /"msg":"reload done"/, from);
  t.match(serve.stderr.slice(from), /users file refused, keeping the previous users/);

  writeFileSync(path.join(dir, 'aliases'), 'sales: alice\n|/bin/sh\n');
  from = serve.stderr.length;
  serve.child.kill('SIGHUP');
  t.match(await logLine(serve, /"msg":"reload done"/, from), /"aliases":"refused"/);
  t.match(serve.stderr.slice(from), /aliases file refused, keeping the previous aliases/);
  const kept = await LineClient.connect(port('smtp'));
  await kept.expect(/^220 /);
  await kept.command('HELO client.example.net', /^250 /);
  await kept.command('MAIL FROM:<bob@example.net>', /^250 /);
  await kept.command('RCPT TO:<sales@example.org>', /^250 /);
  await kept.command('QUIT', /^221 /);
  const still = await LineClient.connect(port('pop3'));
  await still.expect(/^\+OK /);
  await still.command('USER alice', /^\+OK/);
  await still.command('PASS looking-glass', /^\+OK/);
  await still.command('QUIT', /^\+OK/);

  const result = await serve.stop();
  t.equal(result.code, 0, 'SIGHUP never stopped the server');
});

t.test('serve: a certificate renewed on disk is taken without SIGHUP; a live POP3S session carries on', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({
      listeners: { pop3: false, pop3s: '127.0.0.1:0', smtp: false },
      tls: { cert: 'live/cert.pem', key: 'live/key.pem' },
    }),
    passwd: 'alice:{PLAIN}wonder\n',
    live: {},
    mail: { alice: { cur: {}, new: { '1700000000.M1P1.host': 'Subject: hi\n\nHello.\n' }, tmp: {} } },
  });
  const live = path.join(dir, 'live');
  copyFileSync(path.join(TLS, 'localhost.crt'), path.join(live, 'cert.pem'));
  copyFileSync(path.join(TLS, 'localhost.key'), path.join(live, 'key.pem'));
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const port = portOf(lines.find((l) => l.name === 'pop3s')?.address ?? ':0');
  t.equal(await peerFingerprint(port), fingerprint(path.join(TLS, 'localhost.crt')));
  const session = await LineClient.connect(port, { tls: { ca: readFileSync(path.join(TLS, 'ca.crt')) } });
  await session.expect(/^\+OK /);
  await session.command('USER alice', /^\+OK/);
  await session.command('PASS wonder', /^\+OK/);

  // As certbot renews: new files written beside, then renamed over the old names.
  let from = serve.stderr.length;
  copyFileSync(path.join(TLS, 'selfsigned.crt'), path.join(live, 'cert.new'));
  copyFileSync(path.join(TLS, 'selfsigned.key'), path.join(live, 'key.new'));
  renameSync(path.join(live, 'cert.new'), path.join(live, 'cert.pem'));
  renameSync(path.join(live, 'key.new'), path.join(live, 'key.pem'));
  t.match(await logLine(serve, /"msg":"TLS certificate reloaded"/, from), /"reason":"file change"/);
  t.equal(await peerFingerprint(port), fingerprint(path.join(TLS, 'selfsigned.crt')), 'new handshakes get the renewed certificate');
  await session.command('STAT', /^\+OK 1 /);
  await session.command('RETR 1', /^\+OK/);
  t.same(await session.lines(), ['Subject: hi', '', 'Hello.'], 'the session from before the renewal carries on');

  // A broken renewal (a key that does not match) is refused; the served certificate stays.
  from = serve.stderr.length;
  copyFileSync(path.join(TLS, 'localhost.key'), path.join(live, 'key.pem'));
  t.match(await logLine(serve, /"msg":"TLS certificate reload refused; keeping the previous certificate"/, from), /"reason":"file change"/);
  t.equal(await peerFingerprint(port), fingerprint(path.join(TLS, 'selfsigned.crt')));
  await session.command('QUIT', /^\+OK/);
  t.equal((await serve.stop()).code, 0);
});
