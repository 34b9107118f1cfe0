/**
 * A private Postfix instance for interop tests (../shared/PEERS.md): the
 * master.cf services every test needs, the common main.cf, and a way to wait
 * for Postfix's log without polling.
 */
import { readFileSync } from 'node:fs';
import { watch } from 'node:fs/promises';
import { join } from 'node:path';

/** master.cf services with chroot off; a test appends its own transport lines. */
export const POSTFIX_SERVICES = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/** main.cf for an instance in `dir` that delivers example.org through `virtualTransport`; `extra` lines are appended. */
export function postfixMainCf(dir: string, virtualTransport: string, extra = ''): string {
  return `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = relay.test
mydestination =
local_transport = error:no local delivery here
virtual_mailbox_domains = example.org
virtual_transport = ${virtualTransport}
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
in_flow_delay = 0
biff = no
${extra}`;
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Resolves once the file's text satisfies `done` (fs.watch events, no polling); bounded by tap's timeout. */
export async function waitForText(dir: string, file: string, done: (text: string) => boolean): Promise<string> {
  const read = (): string => readText(join(dir, file));
  let text = read();
  if (done(text)) return text;
  const stop = new AbortController();
  try {
    for await (const _event of watch(dir, { signal: stop.signal })) {
      text = read();
      if (done(text)) return text;
    }
  } finally {
    stop.abort();
  }
  return text;
}
