/**
 * TLS material for STLS/STARTTLS and implicit-TLS listeners.
 *
 * The front-ends never touch the file system (DESIGN.md dependency rules),
 * so reading certificate files takes an injected `readFile`; the CLI passes
 * node:fs's. A TlsContextHolder keeps the current SecureContext and can be
 * updated at run time (certificate renewal): new handshakes use the new
 * context, sessions already encrypted keep theirs.
 */
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Timers } from './timers.js';

/** PEM certificate chain and key (and optionally a CA bundle to send with them). */
export interface TlsMaterial {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
}

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile?: string;
}

/** What a server option accepts: PEM material, a ready SecureContext, or a shared holder. */
export type TlsOption = TlsMaterial | SecureContext | TlsContextHolder;

function isSecureContext(value: unknown): value is SecureContext {
  return typeof value === 'object' && value !== null && 'context' in value && !('cert' in value);
}

/** Build a SecureContext; bad PEM or a key that does not match the certificate is a ConfigError. */
export function secureContextFrom(material: TlsMaterial | SecureContext): SecureContext {
  if (isSecureContext(material)) return material;
  try {
    return createSecureContext({
      cert: material.cert,
      key: material.key,
      ...(material.ca === undefined ? {} : { ca: material.ca as string | Buffer | (string | Buffer)[] }),
      minVersion: 'TLSv1.2',
    });
  } catch (err) {
    throw new ConfigError(`invalid TLS certificate or key: ${(err as Error).message}`, { key: 'tls', cause: err });
  }
}

/** Read a certificate pair from files; a missing file is a ConfigError naming it. */
export async function loadTlsFiles(files: TlsFiles, readFile: (path: string) => Promise<Buffer>): Promise<TlsMaterial> {
  const read = async (path: string, key: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new ConfigError(`cannot read ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
        key,
        cause: err,
      });
    }
  };
  const [cert, key, ca] = await Promise.all([
    read(files.certFile, 'tls.cert'),
    read(files.keyFile, 'tls.key'),
    files.caFile === undefined ? Promise.resolve(undefined) : read(files.caFile, 'tls.ca'),
  ]);
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

export class TlsContextHolder {
  #context: SecureContext;

  constructor(initial: TlsMaterial | SecureContext) {
    this.#context = secureContextFrom(initial);
  }

  static from(option: TlsOption): TlsContextHolder {
    return option instanceof TlsContextHolder ? option : new TlsContextHolder(option);
  }

  get current(): SecureContext {
    return this.#context;
  }

  /** Swap in new material; throws ConfigError (keeping the old context) when it is bad. */
  update(material: TlsMaterial | SecureContext): void {
    this.#context = secureContextFrom(material);
  }

  /** Re-read the files and swap the context in (e.g. on SIGHUP after a renewal). */
  async reload(files: TlsFiles, readFile: (path: string) => Promise<Buffer>): Promise<void> {
    this.update(await loadTlsFiles(files, readFile));
  }
}

export class TlsHandshakeError extends Error {
  override readonly name = 'TlsHandshakeError';
}

/**
 * Run the server side of a TLS handshake over an accepted socket (implicit
 * TLS, or STLS after the reply was sent). Resolves with the encrypted
 * socket once the handshake is done; rejects with TlsHandshakeError on
 * failure or after `timeoutMs`, having destroyed the socket.
 */
export function upgradeToTls(
  socket: Socket,
  context: SecureContext,
  timeoutMs: number,
  timers: Timers,
): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
    let settled = false;
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      secure.destroy();
      socket.destroy();
      reject(new TlsHandshakeError(reason));
    };
    const timer = timers.start('handshake', timeoutMs, () => fail('TLS handshake timed out'));
    // Stays attached: an error after the handshake must never go unhandled
    // (the owner adds its own listener and reacts to 'close').
    secure.on('error', (err: Error) => fail(`TLS handshake failed: ${err.message}`));
    secure.once('close', () => fail('connection closed during the TLS handshake'));
    secure.once('secure', () => {
      if (settled) return;
      settled = true;
      timer.cancel();
      resolve(secure);
    });
  });
}
