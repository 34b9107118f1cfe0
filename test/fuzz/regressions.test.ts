/**
 * Regression tests for defects the fuzz runs found, one per defect, each
 * deterministic (the fuzz run that found it names its seed).
 */
import t from 'tap';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureInsideRoot } from '../../src/storage/maildir/layout.ts';
import { nodeFs, type FsLayer } from '../../src/storage/maildir/fs.ts';
import { StorageError } from '../../src/errors.ts';

/**
 * Found by test/fuzz/smtp-sessions.test.ts (FUZZ_SEED=1): two first
 * deliveries to a new user raced; one's realpath() saw no folder, the other
 * then made it, and the first one's lstat() saw it and called it "a dangling
 * symbolic link": StorageError('invalid-name'), so SMTP answered 554 5.3.0
 * for a recipient whose copy other recipients of the message had already
 * got. The race is replayed here by an fs layer that makes the folder
 * between the two calls.
 */
t.test('ensureInsideRoot: a folder created between realpath and lstat is not a dangling link', async (t) => {
  const root = t.testdir({});
  const dir = join(root, 'postmaster');
  let raced = 0;
  const racingFs: FsLayer = {
    ...nodeFs,
    async realpath(p: string): Promise<string> {
      if (p === dir && raced === 0) {
        raced++;
        await mkdir(dir); // the other delivery wins the race here
        const err = new Error(`ENOENT: no such file or directory, realpath '${p}'`) as NodeJS.ErrnoException;
        err.code = 'ENOENT';
        throw err;
      }
      return nodeFs.realpath(p);
    },
  };
  await t.resolves(ensureInsideRoot(racingFs, root, dir), 'the new folder is judged by where it really is');
  t.equal(raced, 1, 'the race was replayed');
});

t.test('ensureInsideRoot still refuses a real dangling link and a link out of the root', async (t) => {
  const base = t.testdir({ mail: {}, outside: {} });
  const root = join(base, 'mail');
  await symlink(join(base, 'nowhere'), join(root, 'dangling'));
  await symlink(join(base, 'outside'), join(root, 'escape'));
  for (const name of ['dangling', 'escape', 'escape/sub']) {
    const err = await ensureInsideRoot(nodeFs, root, join(root, name)).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof StorageError && err.kind === 'invalid-name', `${name}: StorageError('invalid-name')`);
  }
  await t.resolves(ensureInsideRoot(nodeFs, root, join(root, 'fresh')), 'a folder that does not exist yet is fine');
});

/**
 * Found by test/fuzz/smtp-sessions.test.ts (any seed, clean sessions that
 * half-close): a client that pipelines `.` and QUIT and then sends its FIN
 * (`nc -N`, shutdown(SHUT_WR)) loses its 250 when the delivery is still
 * being written at the FIN: smtp-server's listener is not allowHalfOpen, so
 * Node ends the server's side at the client's FIN and the 250 written
 * afterwards goes nowhere. The message IS delivered, so the sender retries
 * it: a duplicate. The store below holds the delivery until the client has
 * half-closed. Owner: src/smtp (allowHalfOpen on smtp-server's listener and
 * a close once the replies owed are written). POP3 does this already
 * (src/protocol/server.ts).
 */
t.test('SMTP: a client that half-closes after pipelining . and QUIT still gets 250 and 221', async (t) => {
  const { startSmtp } = await import('../helpers/smtp-setup.ts');
  const { MemoryStore } = await import('../../src/storage/memory-store.ts');
  const { runSession } = await import('./support/session-runner.ts');
  const memory = new MemoryStore({ hostname: 'test.example' });
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const store = Object.create(memory) as typeof memory;
  store.deliver = async (request) => {
    await gate;
    return memory.deliver(request);
  };
  const h = await startSmtp(t, { store });
  const bytes = Buffer.from('EHLO c.example\r\nMAIL FROM:<s@c.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: half-close\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  const session = runSession(h.port, { bytes, writes: [bytes.length], yieldBetween: false, finish: 'end', waitGreeting: true }, 30_000);
  // Ordering aid only: let the FIN reach the server before the store answers.
  setTimeout(release, 200);
  const result = await session;
  t.match(result.output, /\r\n354 /, 'the DATA was accepted');
  t.match(result.output, /\r\n250 [^\r\n]*\r\n221 /, 'the 250 for the message and the 221 arrived');
  t.equal(result.isHung, false, 'the server closed the connection by itself');
  t.equal(memory.stats().delivered, 1, 'the message was stored once');
  await memory.close();
});
