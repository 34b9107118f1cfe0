/**
 * Shared parts of the POP3 interop tests (test/integration/pop3-*.test.ts):
 * finding a real client, a live server over a Maildir tree of tricky
 * fixtures, and running a client as a child process.
 *
 * A missing client skips its tests with the reason, unless
 * MAILDIRD_REQUIRE_INTEROP=1 (.ci/run sets it), where it fails them.
 */
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fixtureMessages, makeMaildir, referenceWire, type FixtureMessage } from './maildir-tree.ts';
import { startPop3, TEST_TLS, type Pop3Harness } from './pop3-harness.ts';
import type { Pop3ServerOptions } from '../../src/pop3/server.ts';

export const REQUIRE_INTEROP = process.env.MAILDIRD_REQUIRE_INTEROP === '1';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Run a program to its end (bounded by `timeoutMs`), never throwing on a non-zero exit. */
export function run(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'buffer',
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 256 * 1024 * 1024,
        cwd: options.cwd,
      },
      (err, stdout, stderr) => {
        if (err !== null && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(err);
          return;
        }
        resolve({ code: child.exitCode, stdout, stderr: stderr.toString('utf8') });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Whether `program` runs here. Returns the skip reason when it does not
 * (and interop is not required), false when it does.
 */
export async function missingClient(program: string, probe: readonly string[]): Promise<string | false> {
  try {
    await run(program, probe, { timeoutMs: 20_000 });
    return false;
  } catch {
    return REQUIRE_INTEROP ? false : `${program} is not installed (set MAILDIRD_REQUIRE_INTEROP=1 to fail instead)`;
  }
}

/** A fixture as it must arrive: the wire form, byte for byte. */
export interface ExpectedMessage {
  readonly file: string;
  readonly stored: Buffer;
  readonly wire: Buffer;
}

export interface InteropServer {
  readonly harness: Pop3Harness;
  readonly port: number;
  readonly tlsPort: number;
  /** alice's messages in POP3 order. */
  readonly expected: readonly ExpectedMessage[];
  readonly maildir: string;
}

/**
 * A live server (STLS and an implicit-TLS listener, test CA) over a
 * Maildir store whose user alice holds every fixture, written the way
 * other MDAs leave them: some CRLF, none with W=, in cur/ and new/.
 * alice/secret, bob/hunter2.
 */
export async function startInteropServer(t: Test, server: Partial<Pop3ServerOptions> = {}): Promise<InteropServer> {
  const harness = await startPop3(t, { kind: 'maildir', server: { tls: TEST_TLS, ...server } });
  const fixtures: FixtureMessage[] = fixtureMessages();
  const maildir = join(harness.root as string, 'alice');
  const cur: Record<string, Buffer> = {};
  const fresh: Record<string, Buffer> = {};
  fixtures.forEach((f, i) => {
    const name = `${1_700_000_000 + i}.M${i}P1Q1.mda`;
    if (i % 2 === 0) cur[`${name}:2,`] = f.bytes;
    else fresh[name] = f.bytes;
  });
  makeMaildir(maildir, { cur, new: fresh });
  const { port: tlsPort } = await harness.server.listen(0, '127.0.0.1', { implicitTls: true });
  return {
    harness,
    port: harness.port,
    tlsPort,
    maildir,
    expected: fixtures.map((f) => ({ file: f.file, stored: f.bytes, wire: referenceWire(f.bytes) })),
  };
}

/** CRLF to LF, for clients that hand messages on with LF line ends. */
export function toLf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}
