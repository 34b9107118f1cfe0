/**
 * A recording, fault-injecting FsLayer for tests. It wraps a real FsLayer
 * (default: nodeFs, so the files are real) and
 *
 * - records every call, in order, with its path (and destination for
 *   rename/link), the tick at which it started and the tick at which it
 *   settled, so a test can prove "file fsync < rename < directory fsync <
 *   acknowledgement" even when calls overlap (group commit);
 * - records the calls made through the FileHandles it hands out (write,
 *   read, close, sync) and on the descriptors of openFd, keyed by the path
 *   the handle or descriptor was opened with;
 * - fails chosen calls with a given errno (`{ op: 'fsync', path: /new\//,
 *   code: 'ENOSPC' }`), before the real call or, with `afterEffect`, after
 *   it ran (what NFS does when a retransmitted rename reports ENOENT
 *   although it happened);
 * - holds chosen calls until a promise settles, so a test can pile up
 *   concurrent work deterministically instead of sleeping.
 *
 * `mark(label)` puts a test's own event (an outcome resolving) into the same
 * sequence.
 */
import type { Dirent, Stats } from 'node:fs';
import { nodeFs, type FileHandle, type FsLayer } from '../../src/storage/maildir/fs.js';

/** FsLayer methods plus the FileHandle methods the recorder watches. */
export type FsOp =
  | keyof FsLayer
  | 'write' // FileHandle.write / writev / writeFile / appendFile
  | 'read' // FileHandle.read / readFile
  | 'close' // FileHandle.close
  | 'truncate' // FileHandle.truncate
  | 'fstat'; // FileHandle.stat

export interface FsCall {
  /** Order of the call's start among all recorded events. */
  readonly seq: number;
  readonly op: FsOp | 'mark';
  readonly path: string;
  /** Destination of rename/link. */
  readonly to?: string;
  /** Tick at which the call settled (resolved or rejected); undefined while in flight. */
  end?: number;
  /** errno code when the call failed (injected or real). */
  error?: string;
  /** True when this call's failure was injected by a rule. */
  injected?: boolean;
}

export interface FaultRule {
  readonly op: FsOp;
  /** Matches the call's path, or for rename/link either path. Default: every path. */
  readonly path?: RegExp | string;
  /** errno to fail with (ENOSPC, EIO, EACCES, ...). Without it the rule only holds (see `wait`). */
  readonly code?: string;
  /** Run the real call first, then fail: the operation happened but reports an error. */
  readonly afterEffect?: boolean;
  /** Let this many matching calls pass before the rule applies. Default 0. */
  readonly skip?: number;
  /** How many matching calls the rule applies to. Default: every one. */
  readonly times?: number;
  /** Hold matching calls until this settles (then apply `code`, if any). */
  readonly wait?: Promise<unknown>;
}

interface ActiveRule extends FaultRule {
  seen: number;
  applied: number;
}

function matches(pattern: RegExp | string | undefined, ...paths: (string | undefined)[]): boolean {
  if (pattern === undefined) return true;
  return paths.some(
    (p) => p !== undefined && (typeof pattern === 'string' ? p.includes(pattern) : pattern.test(p)),
  );
}

function errnoError(code: string, op: string, path: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected fault, ${op} '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = op;
  err.path = path;
  return err;
}

const HANDLE_OPS: Record<string, FsOp> = {
  write: 'write',
  writev: 'write',
  writeFile: 'write',
  appendFile: 'write',
  read: 'read',
  readv: 'read',
  readFile: 'read',
  close: 'close',
  truncate: 'truncate',
  stat: 'fstat',
  sync: 'fsync',
  datasync: 'fsync',
};

export class FsRecorder implements FsLayer {
  readonly calls: FsCall[] = [];
  readonly #inner: FsLayer;
  #tick = 0;
  #rules: ActiveRule[] = [];
  /** Path each handed-out handle was opened with; keys are the proxies. */
  readonly #handlePaths = new WeakMap<object, string>();
  /** The real handle behind each proxy. */
  readonly #targets = new WeakMap<object, FileHandle>();
  /** Path each descriptor from openFd was opened with. */
  readonly #fdPaths = new Map<number, string>();

  constructor(inner: FsLayer = nodeFs) {
    this.#inner = inner;
  }

  /** Add a fault (or hold) rule; returns a function that removes it. */
  fail(rule: FaultRule): () => void {
    const active: ActiveRule = { ...rule, seen: 0, applied: 0 };
    this.#rules.push(active);
    return () => {
      this.#rules = this.#rules.filter((r) => r !== active);
    };
  }

  /** Remove every rule. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Record a test event (an outcome resolving) in the same sequence as the calls. */
  mark(label: string): FsCall {
    const call: FsCall = { seq: ++this.#tick, op: 'mark', path: label };
    call.end = call.seq;
    this.calls.push(call);
    return call;
  }

  /** Recorded calls of one op, optionally filtered by path. */
  ops(op: FsOp | 'mark', path?: RegExp | string): FsCall[] {
    return this.calls.filter((c) => c.op === op && matches(path, c.path, c.to));
  }

  /** Forget the recorded calls (rules stay). */
  reset(): void {
    this.calls.length = 0;
  }

  async #run<T>(op: FsOp, path: string, to: string | undefined, real: () => Promise<T>): Promise<T> {
    const call: FsCall = to === undefined ? { seq: ++this.#tick, op, path } : { seq: ++this.#tick, op, path, to };
    this.calls.push(call);
    const rules = this.#rules.filter((r) => r.op === op && matches(r.path, path, to));
    let fault: ActiveRule | undefined;
    for (const rule of rules) {
      rule.seen += 1;
      if (rule.seen <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && rule.applied >= rule.times) continue;
      rule.applied += 1;
      if (rule.wait !== undefined) await rule.wait.catch(() => undefined);
      if (rule.code !== undefined && fault === undefined) fault = rule;
    }
    try {
      if (fault !== undefined && fault.code !== undefined) {
        if (fault.afterEffect === true) await real();
        call.injected = true;
        throw errnoError(fault.code, op, path);
      }
      return await real();
    } catch (err) {
      call.error = (err as NodeJS.ErrnoException).code ?? String(err);
      throw err;
    } finally {
      call.end = ++this.#tick;
    }
  }

  /**
   * The synchronous twin of #run, for readSync: same recording and faults,
   * but a call that cannot wait cannot be held (a `wait` rule throws).
   */
  #runSync<T>(op: FsOp, path: string, real: () => T): T {
    const call: FsCall = { seq: ++this.#tick, op, path };
    this.calls.push(call);
    let fault: ActiveRule | undefined;
    for (const rule of this.#rules.filter((r) => r.op === op && matches(r.path, path))) {
      rule.seen += 1;
      if (rule.seen <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && rule.applied >= rule.times) continue;
      rule.applied += 1;
      if (rule.wait !== undefined) throw new Error(`FsRecorder: a synchronous ${op} cannot be held by a wait rule`);
      if (rule.code !== undefined && fault === undefined) fault = rule;
    }
    try {
      if (fault !== undefined && fault.code !== undefined) {
        if (fault.afterEffect === true) real();
        call.injected = true;
        throw errnoError(fault.code, op, path);
      }
      return real();
    } catch (err) {
      call.error = (err as NodeJS.ErrnoException).code ?? String(err);
      throw err;
    } finally {
      call.end = ++this.#tick;
    }
  }

  #pathOf(handle: FileHandle): string {
    return this.#handlePaths.get(handle) ?? `<fd ${handle.fd}>`;
  }

  #wrapHandle(real: FileHandle, path: string): FileHandle {
    // FileHandle keeps its state in internal slots, so every method must run
    // with the real handle as `this`; the proxy only intercepts and records.
    const proxy = new Proxy(real, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        const op = typeof prop === 'string' ? HANDLE_OPS[prop] : undefined;
        if (op === undefined) return fn.bind(target);
        return (...args: unknown[]) => this.#run(op, path, undefined, async () => fn.apply(target, args));
      },
    });
    this.#handlePaths.set(proxy, path);
    this.#targets.set(proxy, real);
    return proxy;
  }

  async open(path: string, flags: string | number, mode?: number): Promise<FileHandle> {
    const handle = await this.#run('open', path, undefined, () => this.#inner.open(path, flags, mode));
    return this.#wrapHandle(handle, path);
  }

  fsync(handle: FileHandle): Promise<void> {
    const real = this.#targets.get(handle) ?? handle;
    return this.#run('fsync', this.#pathOf(handle), undefined, () => this.#inner.fsync(real));
  }

  fsyncDir(path: string): Promise<void> {
    return this.#run('fsyncDir', path, undefined, () => this.#inner.fsyncDir(path));
  }

  rename(from: string, to: string): Promise<void> {
    return this.#run('rename', from, to, () => this.#inner.rename(from, to));
  }

  link(existing: string, newPath: string): Promise<void> {
    return this.#run('link', existing, newPath, () => this.#inner.link(existing, newPath));
  }

  unlink(path: string): Promise<void> {
    return this.#run('unlink', path, undefined, () => this.#inner.unlink(path));
  }

  mkdir(path: string, mode?: number): Promise<void> {
    return this.#run('mkdir', path, undefined, () => this.#inner.mkdir(path, mode));
  }

  rmdir(path: string): Promise<void> {
    return this.#run('rmdir', path, undefined, () => this.#inner.rmdir(path));
  }

  readdir(path: string): Promise<string[]> {
    return this.#run('readdir', path, undefined, () => this.#inner.readdir(path));
  }

  readdirWithTypes(path: string): Promise<Dirent[]> {
    return this.#run('readdirWithTypes', path, undefined, () => this.#inner.readdirWithTypes(path));
  }

  stat(path: string): Promise<Stats> {
    return this.#run('stat', path, undefined, () => this.#inner.stat(path));
  }

  lstat(path: string): Promise<Stats> {
    return this.#run('lstat', path, undefined, () => this.#inner.lstat(path));
  }

  realpath(path: string): Promise<string> {
    return this.#run('realpath', path, undefined, () => this.#inner.realpath(path));
  }

  readFile(path: string): Promise<Buffer> {
    return this.#run('readFile', path, undefined, () => this.#inner.readFile(path));
  }

  readSync(path: string, flags: number, into: Buffer): number {
    return this.#runSync('readSync', path, () => this.#inner.readSync(path, flags, into));
  }

  async openFd(path: string, flags: number, mode: number): Promise<number> {
    const fd = await this.#run('open', path, undefined, () => this.#inner.openFd(path, flags, mode));
    this.#fdPaths.set(fd, path);
    return fd;
  }

  writeFdSync(fd: number, data: Buffer, offset: number, length: number): number {
    return this.#runSync('write', this.#fdPath(fd), () => this.#inner.writeFdSync(fd, data, offset, length));
  }

  readFd(fd: number, into: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.#run('read', this.#fdPath(fd), undefined, () => this.#inner.readFd(fd, into, offset, length, position));
  }

  fsyncFd(fd: number): Promise<void> {
    return this.#run('fsync', this.#fdPath(fd), undefined, () => this.#inner.fsyncFd(fd));
  }

  /** Like close(2), the descriptor is released even when a fault is injected. */
  closeFdSync(fd: number): void {
    const path = this.#fdPath(fd);
    this.#fdPaths.delete(fd);
    let isClosed = false;
    try {
      this.#runSync('close', path, () => {
        isClosed = true;
        this.#inner.closeFdSync(fd);
      });
    } finally {
      if (!isClosed) this.#inner.closeFdSync(fd);
    }
  }

  #fdPath(fd: number): string {
    return this.#fdPaths.get(fd) ?? `<fd ${fd}>`;
  }

  writeFile(path: string, data: string | Buffer, mode?: number): Promise<void> {
    return this.#run('writeFile', path, undefined, () => this.#inner.writeFile(path, data, mode));
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.#run('chown', path, undefined, () => this.#inner.chown(path, uid, gid));
  }

  utimes(path: string, atime: Date, mtime: Date): Promise<void> {
    return this.#run('utimes', path, undefined, () => this.#inner.utimes(path, atime, mtime));
  }
}

/** A promise with its resolver exposed, for `wait` rules. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
