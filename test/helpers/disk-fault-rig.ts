/**
 * One MaildirStore (on a given FsLayer) behind a POP3 and an SMTP server on
 * 127.0.0.1:0, with users alice and bob, and short scripted sessions that
 * return the replies: what the disk-fault tests (test/fuzz/disk-faults.test.ts)
 * drive while faults hit one user's files and not the other's.
 */
import type { Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoginThrottle } from '../../src/auth/throttle.js';
import { UserDatabase } from '../../src/auth/user-db.js';
import { createPop3Server } from '../../src/pop3/server.js';
import { createSmtpServer } from '../../src/smtp/server.js';
import type { FsLayer } from '../../src/storage/maildir/fs.js';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { WireClient } from './crash-harness.js';

export const PASSWORDS: Readonly<Record<string, string>> = { alice: 'a-pw', bob: 'b-pw' };

export interface Rig {
  readonly root: string;
  /** One SMTP transaction: the reply to the end of data. */
  send(user: string, messageId: string, bodyBytes?: number): Promise<string>;
  /** Log in, DELE the given message numbers, QUIT: the QUIT reply (or the failed login's). */
  deleteAndQuit(user: string, numbers: readonly number[]): Promise<string>;
  /** Message-IDs in the user's maildrop (new/ + cur/) and Trash, with counts. */
  where(user: string): { maildrop: string[]; trash: string[]; tmp: string[] };
}

function ids(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.map((n) => /^Message-ID: <([^>]+)>/im.exec(readFileSync(join(dir, n), 'latin1'))?.[1] ?? `?${n}`).sort();
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export async function startRig(t: Test, root: string, fs: FsLayer, deletionMode: 'trash' | 'expunge' = 'trash'): Promise<Rig> {
  const store = await MaildirStore.open({ root, fs, deletionMode, hostname: 'rig.test', cache: { isPersistent: false } });
  const users = UserDatabase.fromEntries(
    Object.entries(PASSWORDS).map(([name, pw]) => ({ name, password: `{PLAIN}${pw}` })),
    { localDomains: ['example.org'], dummyHash: '{PLAIN}dummy' },
  );
  const pop3 = createPop3Server({ store, users, hostname: 'pop.test', throttle: new LoginThrottle({ baseDelayMs: 0 }) });
  const smtp = createSmtpServer({ store, users, localDomains: ['example.org'], hostname: 'mx.test', reverseLookup: false });
  const pop3Port = (await pop3.listen(0, '127.0.0.1')).port;
  const smtpAddress = await smtp.listen({ port: 0, host: '127.0.0.1' });
  if (typeof smtpAddress === 'string') throw new Error('expected a TCP address');
  const clients: WireClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await pop3.close();
    await smtp.close();
    await store.close();
  });
  const open = async (port: number) => {
    const c = await WireClient.open(port);
    clients.push(c);
    return c;
  };
  return {
    root,
    async send(user, messageId, bodyBytes = 100) {
      const c = await open(smtpAddress.port);
      await c.smtpReply();
      c.write(`EHLO rig.client\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<${user}@example.org>\r\nDATA\r\n`);
      for (let i = 0; i < 4; i++) await c.smtpReply();
      const line = 'x'.repeat(76);
      const body = Array.from({ length: Math.ceil(bodyBytes / 78) }, () => line).join('\r\n');
      c.write(`Message-ID: <${messageId}>\r\nSubject: fault\r\n\r\n${body}\r\n.\r\n`);
      const reply = await c.smtpReply();
      c.write('QUIT\r\n');
      c.close();
      return reply;
    },
    async deleteAndQuit(user, numbers) {
      const c = await open(pop3Port);
      await c.line();
      c.write(`USER ${user}\r\nPASS ${PASSWORDS[user] ?? ''}\r\n`);
      await c.line();
      const pass = await c.line();
      if (!pass.startsWith('+OK')) {
        c.close();
        return pass;
      }
      for (const n of numbers) {
        c.write(`DELE ${n}\r\n`);
        const reply = await c.line();
        if (!reply.startsWith('+OK')) throw new Error(`DELE ${n}: ${reply}`);
      }
      c.write('QUIT\r\n');
      const quit = await c.line();
      c.close();
      return quit;
    },
    where(user) {
      const dir = join(root, user);
      return {
        maildrop: [...ids(join(dir, 'new')), ...ids(join(dir, 'cur'))].sort(),
        trash: [...ids(join(dir, '.Trash', 'new')), ...ids(join(dir, '.Trash', 'cur'))].sort(),
        tmp: [...list(join(dir, 'tmp')), ...list(join(dir, '.Trash', 'tmp'))],
      };
    },
  };
}
