/**
 * Python's poplib (stdlib) against a live server: USER/PASS, STAT, LIST,
 * UIDL, RETR of every tricky fixture byte for byte, TOP, DELE + QUIT, then
 * the same over STLS and over implicit TLS (POP3_SSL) with the test CA.
 */
import t from 'tap';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { missingClient, run, startInteropServer } from '../helpers/pop3-interop.ts';
import { TLS_DIR } from '../helpers/pop3-harness.ts';

const skip = await missingClient('python3', ['-c', 'import poplib']);
const CA = new URL('ca.crt', TLS_DIR).pathname;

/** The client: prints JSON of what it saw, and the messages as hex (wire form rebuilt from poplib's lines). */
const SCRIPT = String.raw`
import json, poplib, ssl, sys
mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
poplib._MAXLINE = 1 << 20
ctx = ssl.create_default_context(cafile=ca)
if mode == 'ssl':
    p = poplib.POP3_SSL('localhost', port, context=ctx)
else:
    p = poplib.POP3('127.0.0.1', port)
    if mode == 'stls':
        p.stls(context=ctx)
out = {'welcome': p.getwelcome().decode(), 'capa': sorted(p.capa().keys())}
p.user('alice'); p.pass_('secret')
out['stat'] = list(p.stat())
out['list'] = [l.decode() for l in p.list()[1]]
out['uidl'] = [l.decode() for l in p.uidl()[1]]
msgs = []
for n in range(1, out['stat'][0] + 1):
    resp, lines, octets = p.retr(n)
    msgs.append((b''.join(l + b'\r\n' for l in lines)).hex())
out['messages'] = msgs
out['top'] = (b''.join(l + b'\r\n' for l in p.top(1, 0)[1])).hex()
if mode == 'plain':
    p.dele(1); p.dele(2)
    try:
        p.retr(1)
        out['retr_deleted'] = 'ok'
    except poplib.error_proto as e:
        out['retr_deleted'] = e.args[0].decode()
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;

for (const mode of ['plain', 'stls', 'ssl'] as const) {
  t.test(`poplib (${mode})`, { skip }, async (t) => {
    const server = await startInteropServer(t);
    const port = mode === 'ssl' ? server.tlsPort : server.port;
    const result = await run('python3', ['-c', SCRIPT, mode, String(port), CA]);
    t.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout.toString()) as Record<string, unknown> & { messages: string[]; stat: number[] };
    t.match(out.welcome, /^\+OK maildird POP3 server ready/);
    t.ok((out.capa as string[]).includes('UIDL') && (out.capa as string[]).includes('TOP'));
    const total = server.expected.reduce((sum, m) => sum + m.wire.length, 0);
    t.same(out.stat, [server.expected.length, total], 'STAT counts wire octets');
    t.same(out.list, server.expected.map((m, i) => `${i + 1} ${m.wire.length}`));
    t.equal((out.uidl as string[]).length, server.expected.length);
    server.expected.forEach((m, i) => {
      t.equal(out.messages[i], m.wire.toString('hex'), `${m.file} arrives byte for byte`);
    });
    const header = server.expected[0]!.wire;
    const blank = header.indexOf('\r\n\r\n');
    t.equal(out.top, header.subarray(0, blank + 4).toString('hex'), 'TOP 1 0 is the header and the blank line');
    if (mode === 'plain') {
      t.equal(out.retr_deleted, '-ERR Message 1 already deleted');
      t.match(out.quit, /\(2 messages deleted\)/);
      const left = [...readdirSync(join(server.maildir, 'cur')), ...readdirSync(join(server.maildir, 'new'))];
      t.equal(left.length, server.expected.length - 2, 'QUIT removed the two messages');
      t.equal(readdirSync(join(server.maildir, '.Trash', 'cur')).length, 2, 'into Trash');
    } else {
      t.match(out.quit, /^\+OK/);
    }
  });
}
