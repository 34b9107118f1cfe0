/**
 * A live POP3 server on 127.0.0.1:0 over a real store, for protocol tests.
 * Every test that changes storage runs on each store kind (STORE_KINDS):
 * the in-memory store and the Maildir store on a real temporary tree.
 * Messages are put in through the store's own deliver(), users come from a
 * real UserDatabase.
 */
import type { Test } from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MailStore, MailUser } from '../../src/storage/store.ts';
import { MaildirStore, type MaildirStoreOptions } from '../../src/storage/maildir/maildir-store.ts';
import { MemoryStore } from '../../src/storage/memory-store.ts';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import { UserDatabase } from '../../src/auth/user-db.ts';
import type { PasswdFields } from '../../src/auth/passwd-file.ts';
import { createPop3Server, type Pop3Server, type Pop3ServerOptions } from '../../src/pop3/server.ts';
import type { Pop3ServerEvents } from '../../src/pop3/events.ts';
import { LineClient, type ConnectOptions } from './pop3-client.ts';

export type StoreKind = 'memory' | 'maildir';
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'maildir'];

export const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
export const tlsFixture = (name: string): Buffer => readFileSync(new URL(name, TLS_DIR));
export const TEST_CA = tlsFixture('ca.crt');
export const TEST_TLS = { cert: tlsFixture('localhost.crt'), key: tlsFixture('localhost.key') };

/** Users every harness knows: PLAIN passwords so APOP and CRAM-MD5 work. */
export const DEFAULT_USERS: readonly PasswdFields[] = [
  { name: 'alice', password: '{PLAIN}secret' },
  { name: 'bob', password: '{PLAIN}hunter2' },
  { name: 'jürgen', password: '{PLAIN}pässword' },
];

export interface HarnessOptions {
  readonly kind: StoreKind;
  /** Messages to deliver before the server starts, per user, oldest first. */
  readonly mail?: Readonly<Record<string, readonly (string | Buffer)[]>>;
  readonly users?: readonly PasswdFields[];
  readonly server?: Partial<Omit<Pop3ServerOptions, 'store' | 'users'>>;
  /** Extra MaildirStore options (maildir kind): an FsRecorder, the deletion mode... */
  readonly maildir?: Partial<MaildirStoreOptions>;
}

export type RecordedEvent = { readonly [K in keyof Pop3ServerEvents]: { name: K; payload: Pop3ServerEvents[K][0] } }[keyof Pop3ServerEvents];

export interface Pop3Harness {
  readonly kind: StoreKind;
  readonly server: Pop3Server;
  readonly store: MailStore;
  readonly users: UserDatabase;
  readonly port: number;
  /** The Maildir root (maildir kind only). */
  readonly root: string | undefined;
  readonly events: RecordedEvent[];
  /** Connect and read the greeting. */
  connect(options?: ConnectOptions): Promise<{ client: LineClient; greeting: string }>;
  /** Connect and log in with USER/PASS. */
  login(user?: string, password?: string): Promise<LineClient>;
  deliver(user: string, ...messages: (string | Buffer)[]): Promise<void>;
  /** Resolves at the next `session-end` event. */
  sessionEnd(): Promise<Pop3ServerEvents['session-end'][0]>;
}

const testDirs = new WeakMap<Test, { base: string; next: number }>();

/**
 * A fresh folder for this test: `t.testdir()` wipes its folder whenever it
 * is called, so it is called once per test and each caller gets its own
 * subfolder (several servers, a client's work folder).
 */
export function workDir(t: Test, name: string): string {
  let entry = testDirs.get(t);
  if (entry === undefined) {
    entry = { base: t.testdir({}), next: 0 };
    testDirs.set(t, entry);
  }
  const dir = join(entry.base, `${name}-${++entry.next}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function createStore(
  t: Test,
  kind: StoreKind,
  maildir: Partial<MaildirStoreOptions> = {},
): Promise<{ store: MailStore; root: string | undefined }> {
  switch (kind) {
    case 'maildir': {
      const root = workDir(t, 'mail');
      const store = await MaildirStore.open({ root, hostname: 'test.example', cache: { isPersistent: false }, ...maildir });
      return { store, root };
    }
    case 'memory':
      return { store: new MemoryStore({ hostname: 'test.example' }), root: undefined };
  }
}

export async function startPop3(t: Test, options: HarnessOptions): Promise<Pop3Harness> {
  const { store, root } = await createStore(t, options.kind, options.maildir);
  const users = UserDatabase.fromEntries(options.users ?? DEFAULT_USERS, { dummyHash: '{PLAIN}not-a-password' });
  const deliver = async (user: string, ...messages: (string | Buffer)[]): Promise<void> => {
    const recipient = users.lookup(user) as MailUser;
    for (const content of messages) {
      const [outcome] = await store.deliver({ recipients: [recipient], content: Buffer.from(content) });
      if (outcome === undefined || !outcome.ok) throw new Error(`delivery to ${user} failed`);
    }
  };
  for (const [user, messages] of Object.entries(options.mail ?? {})) await deliver(user, ...messages);
  // No failed-login delays unless a test brings its own throttle: tests fail logins on purpose.
  const throttle = new LoginThrottle({ baseDelayMs: 0 });
  const server = createPop3Server({ store, users, hostname: 'pop.test', throttle, ...options.server });
  const events: RecordedEvent[] = [];
  const endWaiters: ((s: Pop3ServerEvents['session-end'][0]) => void)[] = [];
  for (const name of ['login', 'login-failed', 'retrieve', 'delete', 'session-end'] as const) {
    const on = server.on.bind(server) as (event: string, listener: (payload: unknown) => void) => void;
    on(name, (payload) => {
      events.push({ name, payload } as RecordedEvent);
      if (name === 'session-end') endWaiters.splice(0).forEach((w) => w(payload as Pop3ServerEvents['session-end'][0]));
    });
  }
  const { port } = await server.listen(0, '127.0.0.1');
  const clients: LineClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.destroy();
    await server.close();
    await store.close();
  });
  const connect = async (connectOptions?: ConnectOptions) => {
    const client = await LineClient.connect(port, connectOptions);
    clients.push(client);
    const greeting = await client.expect(/^\+OK /);
    return { client, greeting };
  };
  return {
    kind: options.kind,
    server,
    store,
    users,
    port,
    root,
    events,
    connect,
    async login(user = 'alice', password = 'secret') {
      const { client } = await connect();
      await client.command(`USER ${user}`, '+OK');
      await client.command(`PASS ${password}`, /^\+OK Logged in/);
      return client;
    },
    deliver,
    sessionEnd: () => new Promise((resolve) => endWaiters.push(resolve)),
  };
}

/** `count` small distinct messages: `Subject: message N`. */
export function messages(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `Subject: message ${i + 1}\n\nbody of message ${i + 1}\n`);
}
