/**
 * A POP3 server in its own process, for tests that measure the server
 * alone (memory) and for the benchmark. Run with `tsx`:
 *
 *   tsx test/helpers/pop3-server-child.ts '{"root": "...", "users": [["alice", "secret"]]}'
 *
 * Prints one JSON line `{"port": N}` when listening. Then reads commands on
 * stdin, one per line, answering each with one JSON line:
 *   rss        -> {"rss": bytes, "hwm": bytes} (VmRSS, VmHWM from /proc)
 *   reset-hwm  -> {"ok": true|false} (echo 5 > /proc/self/clear_refs)
 *   close      -> closes the server and the store, then exits
 * It also exits when stdin ends (the parent died), so it never lingers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.ts';
import { MemoryStore } from '../../src/storage/memory-store.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';
import { createPop3Server } from '../../src/pop3/server.ts';
import { LoginThrottle } from '../../src/auth/throttle.ts';

interface ChildConfig {
  /** The Maildir tree; or, with `memory`, nothing is read from disk. */
  readonly root: string;
  /** Serve a MemoryStore holding `count` messages of `size` octets for each user (the protocol's own ceiling). */
  readonly memory?: { readonly count: number; readonly size: number };
  readonly users: readonly (readonly [string, string])[];
  readonly host?: string;
  readonly writeHighWaterMark?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const store = config.memory === undefined ? await MaildirStore.open({ root: config.root, hostname: 'bench.example' }) : seeded(config.memory);

function seeded({ count, size }: { count: number; size: number }): MemoryStore {
  const memory = new MemoryStore({ hostname: 'bench.example' });
  const body = `${'x'.repeat(75)}\n`.repeat(Math.max(1, Math.floor(size / 76)));
  for (const [name] of config.users) {
    for (let i = 0; i < count; i++) memory.seed(name, `From: a@example.org\nSubject: m ${i}\n\n${body}`);
  }
  return memory;
}
const users = UserDatabase.fromEntries(
  config.users.map(([name, password]) => ({ name, password: `{PLAIN}${password}` })),
  { dummyHash: '{PLAIN}x' },
);
const server = createPop3Server({
  store,
  users,
  hostname: 'bench.example',
  throttle: new LoginThrottle({ baseDelayMs: 0 }),
  limits: {
    maxConnectionsPerIp: 0,
    maxConnections: 0,
    ...(config.writeHighWaterMark === undefined ? {} : { writeHighWaterMark: config.writeHighWaterMark }),
  },
});
const { port } = await server.listen(0, config.host ?? '127.0.0.1');
process.stdout.write(`${JSON.stringify({ port })}\n`);

function status(field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return match === null ? 0 : Number(match[1]) * 1024;
}

for await (const line of createInterface({ input: process.stdin })) {
  switch (line.trim()) {
    case 'rss':
      process.stdout.write(`${JSON.stringify({ rss: status('VmRSS'), hwm: status('VmHWM') })}\n`);
      break;
    case 'reset-hwm':
      try {
        writeFileSync('/proc/self/clear_refs', '5');
        process.stdout.write('{"ok":true}\n');
      } catch {
        process.stdout.write('{"ok":false}\n');
      }
      break;
    case 'close':
      await server.close();
      await store.close();
      process.exit(0);
  }
}
// stdin ended: the parent is gone. Never outlive it.
await server.close();
await store.close();
process.exit(0);
