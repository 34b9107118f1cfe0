/**
 * For the SMTP interop tests (test/integration/smtp-*.test.ts): one real
 * MaildirStore on a temporary tree, served by an SMTP listener (inbound),
 * a submission listener (STARTTLS, AUTH required), an SMTPS listener, an
 * LMTP listener and a POP3 listener, so a message sent by a real client can
 * be fetched back by a real POP3 client.
 */
import type { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { UserDatabase } from '../../src/auth/user-db.js';
import { createPop3Server } from '../../src/pop3/server.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { createSmtpServer, type SmtpServer, type SmtpServerOptions } from '../../src/smtp/server.js';

export { missingClient, run, REQUIRE_INTEROP } from './pop3-interop.ts';

export const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
export const CA_FILE = new URL('ca.crt', TLS_DIR).pathname;
export const TLS_PAIR = {
  cert: readFileSync(new URL('localhost.crt', TLS_DIR)),
  key: readFileSync(new URL('localhost.key', TLS_DIR)),
};

export interface InteropPorts {
  readonly smtp: number;
  readonly submission: number;
  readonly smtps: number;
  readonly lmtp: number;
  readonly pop3: number;
}

export interface SmtpInterop {
  readonly root: string;
  readonly ports: InteropPorts;
  readonly store: MaildirStore;
  readonly users: UserDatabase;
}

/** alice/secret and bob/secret (PLAIN, so CRAM-MD5 works when `cramMd5` is on), local domain example.org. */
export async function startSmtpInterop(t: Test, extra: Partial<SmtpServerOptions> = {}): Promise<SmtpInterop> {
  const servers: SmtpServer[] = [];
  let pop3: ReturnType<typeof createPop3Server> | undefined;
  let store: MaildirStore | undefined;
  t.teardown(async () => {
    for (const s of servers) await s.close();
    await pop3?.close();
    await store?.close();
  });
  const root = t.testdir({});
  store = await MaildirStore.open({ root });
  const users = UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}secret' },
      { name: 'bob', password: '{PLAIN}secret' },
    ],
    { localDomains: ['example.org'] },
  );
  const base = { store, users, localDomains: ['example.org'], hostname: 'mx.example.org', reverseLookup: false, tls: TLS_PAIR, ...extra };
  const listen = async (options: Partial<SmtpServerOptions>): Promise<number> => {
    const server = createSmtpServer({ ...base, ...options });
    servers.push(server);
    const address = await server.listen({ port: 0, host: '127.0.0.1' });
    if (typeof address === 'string') throw new Error('expected TCP');
    return address.port;
  };
  const smtp = await listen({});
  const submission = await listen({ requireAuth: true });
  const smtps = await listen({ requireAuth: true, implicitTls: true });
  const lmtp = await listen({ lmtp: true, authOffered: 'never', tls: undefined });
  pop3 = createPop3Server({ store, users, tls: TLS_PAIR });
  const pop3Address = await pop3.listen(0, '127.0.0.1');
  return { root, store, users, ports: { smtp, submission, smtps, lmtp, pop3: pop3Address.port } };
}

/** Every message of `user` fetched with Python's poplib, as hex of the wire form (CRLF lines), in order. */
export const POPLIB_FETCH = String.raw`
import json, poplib, sys
port, user = int(sys.argv[1]), sys.argv[2]
poplib._MAXLINE = 1 << 20
p = poplib.POP3('127.0.0.1', port)
p.user(user); p.pass_('secret')
out = []
for n in range(1, p.stat()[0] + 1):
    resp, lines, octets = p.retr(n)
    out.append((b''.join(l + b'\r\n' for l in lines)).hex())
p.quit()
print(json.dumps(out))
`;
