/**
 * fetchmail against a live server: every message handed to an MDA, UIDL
 * mode (`uidl` + `keep`) so a second run fetches nothing new, a run that
 * deletes (flush), and implicit TLS with certificate checks against the
 * test CA. fetchmail matches certificates by name: connect to localhost.
 */
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingClient, run, startInteropServer, type InteropServer } from '../helpers/pop3-interop.ts';
import { TLS_DIR, workDir } from '../helpers/pop3-harness.ts';

const skip = await missingClient('fetchmail', ['--version']);
const CA = new URL('ca.crt', TLS_DIR).pathname;

interface Options {
  readonly keep: boolean;
  readonly ssl: boolean;
}

async function fetch(t: Test, server: InteropServer, dir: string, options: Options) {
  const out = join(dir, 'out');
  const mda = join(dir, 'mda.sh');
  writeFileSync(mda, `#!/bin/sh\ncat > "$(mktemp -p '${out}' msg.XXXXXXXX)"\n`);
  chmodSync(mda, 0o755);
  const rc = join(dir, 'fetchmailrc');
  writeFileSync(
    rc,
    [
      'set no bouncemail',
      `set idfile "${join(dir, 'fetchids')}"`,
      `poll localhost service ${options.ssl ? server.tlsPort : server.port} protocol pop3 uidl auth password`,
      `  user "alice" there with password "secret" is "alice" here`,
      `  ${options.keep ? "keep" : "nokeep flush fetchall"}`,
      options.ssl ? `  ssl sslcertck sslcertfile "${CA}"` : '  sslproto ""',
      `  mda "${mda}"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const result = await run('fetchmail', ['--nosyslog', '--nodetach', '-f', rc, '-v'], {
    env: { HOME: dir, FETCHMAILHOME: dir },
  });
  t.comment(`fetchmail exit ${String(result.code)}`);
  return result;
}

function delivered(dir: string): Buffer[] {
  const out = join(dir, 'out');
  return readdirSync(out).map((f) => readFileSync(join(out, f)));
}

/**
 * What fetchmail makes of a message, independently of the server: it adds
 * its own Received header (after any Return-Path/Delivered-To lines), hands
 * the MDA LF line ends, drops every CR (lone CRs included) and ends a
 * header-only message with a blank line. Undo exactly that, nothing more.
 */
function fetchmailView(delivered: Buffer): string {
  return delivered
    .toString('latin1')
    .replace(/^Received: from localhost \[127\.0\.0\.1\]\n(?:\t.*\n)*/m, '')
    .replace(/\n+$/, '');
}

function storedView(stored: Buffer): string {
  return stored.toString('latin1').replace(/\r/g, '').replace(/\n+$/, '');
}

t.test('fetchmail --uidl with keep: everything once, nothing new the second time', { skip }, async (t) => {
  const server = await startInteropServer(t);
  const dir = workDir(t, 'fetchmail');
  mkdirSync(join(dir, 'out'));
  const first = await fetch(t, server, dir, { keep: true, ssl: false });
  t.equal(first.code, 0, first.stderr);
  const got = delivered(dir);
  t.equal(got.length, server.expected.length);
  const views = got.map(fetchmailView).sort();
  t.same(views, server.expected.map((m) => storedView(m.stored)).sort(), 'every message delivered intact');
  const second = await fetch(t, server, dir, { keep: true, ssl: false });
  t.equal(second.code, 1, 'exit 1: no new mail');
  t.equal(delivered(dir).length, server.expected.length, 'nothing fetched again');
  await server.harness.deliver('alice', 'Subject: new one\n\nfresh\n');
  const third = await fetch(t, server, dir, { keep: true, ssl: false });
  t.equal(third.code, 0, third.stderr);
  t.equal(delivered(dir).length, server.expected.length + 1, 'only the new message');
});

t.test('fetchmail over implicit TLS, deleting what it fetched', { skip }, async (t) => {
  const server = await startInteropServer(t);
  const dir = workDir(t, 'fetchmail');
  mkdirSync(join(dir, 'out'));
  const result = await fetch(t, server, dir, { keep: false, ssl: true });
  t.equal(result.code, 0, result.stderr);
  t.equal(delivered(dir).length, server.expected.length);
  const left = [...readdirSync(join(server.maildir, 'cur')), ...readdirSync(join(server.maildir, 'new'))];
  t.same(left, [], 'the maildrop is empty');
  t.equal(readdirSync(join(server.maildir, '.Trash', 'cur')).length, server.expected.length, 'all in Trash');
});
