/**
 * A real SMTP server for protocol tests: a MaildirStore on a temporary tree
 * (or any MailStore), the real UserDatabase, a listener on 127.0.0.1:0 and
 * ManualTimers. Reading back what landed on disk is here too.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import { UserDatabase } from '../../src/auth/user-db.js';
import type { FsLayer } from '../../src/storage/maildir/fs.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import type { MailStore } from '../../src/storage/store.js';
import { createSmtpServer, type SmtpServer, type SmtpServerOptions } from '../../src/smtp/server.js';
import { ManualTimers } from './smtp-timers.js';
import { SmtpTestClient, type ConnectOptions } from './smtp-client.js';

export const DOMAIN = 'example.org';

/** alice and bob with PLAIN passwords (so CRAM-MD5 is offered when turned on: `cramMd5`). */
export function testUsers(): UserDatabase {
  return UserDatabase.fromEntries(
    [
      { name: 'alice', password: '{PLAIN}alice-secret' },
      { name: 'bob', password: '{PLAIN}bob-secret' },
      { name: 'carol@other.example', password: '{PLAIN}carol-secret' },
      { name: 'postmaster', password: '{PLAIN}pm-secret' },
    ],
    // A cheap dummy hash: unknown users need not cost Argon2 at 64 MiB in every test.
    { localDomains: [DOMAIN, 'example.net'], dummyHash: '{SSHA256}3ER55iWkPyBNgatYcyxIKgfjY+0BBPjedCeeyPEp+nRzdNDE' },
  );
}

export interface Harness {
  readonly server: SmtpServer;
  readonly port: number;
  readonly timers: ManualTimers;
  readonly root: string | undefined;
  readonly store: MailStore;
  connect(options?: ConnectOptions): Promise<SmtpTestClient>;
}

export interface HarnessOptions extends Partial<Omit<SmtpServerOptions, 'store' | 'users'>> {
  readonly store?: MailStore;
  readonly users?: SmtpServerOptions['users'];
  /** FsLayer for the MaildirStore (fault injection). */
  readonly fs?: FsLayer;
}

/** Start a server for one test; it and its store are closed at the test's end. */
export async function startSmtp(t: Test, options: HarnessOptions = {}): Promise<Harness> {
  const clients: SmtpTestClient[] = [];
  let server: SmtpServer | undefined;
  let ownStore: MailStore | undefined;
  // Registered before t.testdir(), so it runs first: the server (and any
  // delivery still in flight) is done before the folder is removed.
  t.teardown(async () => {
    for (const c of clients) c.destroy();
    await server?.close();
    await ownStore?.close();
  });
  let root: string | undefined;
  let store = options.store;
  if (store === undefined) {
    root = t.testdir({});
    store = await MaildirStore.open({ root, ...(options.fs === undefined ? {} : { fs: options.fs }) });
    ownStore = store;
  }
  const timers = new ManualTimers();
  const { fs: _fs, store: _s, users, ...rest } = options;
  server = createSmtpServer({
    localDomains: [DOMAIN],
    hostname: 'mx.example.org',
    reverseLookup: false,
    timers,
    ...rest,
    store,
    users: users ?? testUsers(),
  });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error('expected a TCP address');
  return {
    server,
    port: address.port,
    timers,
    root,
    store,
    async connect(connectOptions: ConnectOptions = {}) {
      const client = await SmtpTestClient.connect(address.port, connectOptions);
      clients.push(client);
      return client;
    },
  };
}

/** Every message file of `user` under new/ (Maildir), as [name, bytes], sorted by name. */
export async function delivered(root: string, user: string): Promise<[string, Buffer][]> {
  const dir = join(root, user, 'new');
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return [];
  }
  return Promise.all(names.map(async (n): Promise<[string, Buffer]> => [n, await readFile(join(dir, n))]));
}

/** Files anywhere under the user's tmp/ (a failed delivery must leave none). */
export async function leftovers(root: string, user: string): Promise<string[]> {
  try {
    return await readdir(join(root, user, 'tmp'));
  } catch {
    return [];
  }
}

export async function makeUserDir(root: string, user: string): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(root, user, sub), { recursive: true });
}

/** Split a delivered file into its added trace header lines and the rest. */
export function splitTrace(file: Buffer): { returnPath: string; received: string; rest: string } {
  const text = file.toString('latin1');
  const lines = text.split('\n');
  const returnPath = lines[0] ?? '';
  let i = 1;
  let received = lines[i] ?? '';
  while ((lines[i + 1] ?? '').startsWith('\t')) {
    i++;
    received += `\n${lines[i]}`;
  }
  return { returnPath, received, rest: lines.slice(i + 1).join('\n') };
}
