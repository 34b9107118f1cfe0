/**
 * curl against a live server: pop3:// listing and retrieval (byte for
 * byte), a custom DELE, pop3:// with --ssl-reqd (STLS) and pop3s://
 * (implicit TLS) with the test CA.
 */
import t from 'tap';
import { missingClient, run, startInteropServer } from '../helpers/pop3-interop.ts';
import { TLS_DIR } from '../helpers/pop3-harness.ts';

const skip = await missingClient('curl', ['--version']);
const CA = new URL('ca.crt', TLS_DIR).pathname;

function curl(url: string, ...extra: string[]) {
  return run('curl', ['--silent', '--show-error', '--user', 'alice:secret', ...extra, url]);
}

t.test('curl pop3:// lists and retrieves every message byte for byte', { skip }, async (t) => {
  const server = await startInteropServer(t);
  const base = `pop3://127.0.0.1:${server.port}`;
  const list = await curl(`${base}/`);
  t.equal(list.code, 0, list.stderr);
  t.equal(list.stdout.toString(), server.expected.map((m, i) => `${i + 1} ${m.wire.length}\r\n`).join(''));
  for (const [i, m] of server.expected.entries()) {
    const got = await curl(`${base}/${i + 1}`);
    t.equal(got.code, 0, got.stderr);
    t.equal(got.stdout.toString('hex'), m.wire.toString('hex'), m.file);
  }
  const dele = await curl(`${base}/1`, '--request', 'DELE', '--list-only');
  t.equal(dele.code, 0, dele.stderr);
  const after = await curl(`${base}/`);
  t.equal(after.stdout.toString().split('\r\n').filter(Boolean).length, server.expected.length - 1, 'DELE then QUIT removed one');
  const missing = await curl(`${base}/99`);
  t.not(missing.code, 0, 'RETR of a missing message fails');
});

t.test('curl over STLS (--ssl-reqd) and pop3s://', { skip }, async (t) => {
  const server = await startInteropServer(t);
  const stls = await curl(`pop3://localhost:${server.port}/1`, '--ssl-reqd', '--cacert', CA);
  t.equal(stls.code, 0, stls.stderr);
  t.equal(stls.stdout.toString('hex'), server.expected[0]!.wire.toString('hex'));
  const implicit = await curl(`pop3s://localhost:${server.tlsPort}/`, '--cacert', CA);
  t.equal(implicit.code, 0, implicit.stderr);
  t.match(implicit.stdout.toString(), /^1 \d+\r\n/);
  const untrusted = await run('curl', ['--silent', '--user', 'alice:secret', `pop3s://localhost:${server.tlsPort}/`]);
  t.not(untrusted.code, 0, 'an unknown CA is refused by curl');
});
