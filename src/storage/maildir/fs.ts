/**
 * The file-system layer the Maildir adapter does all its I/O through. The
 * default is node:fs/promises; tests inject a wrapper that records calls
 * (to prove fsync -> rename -> directory fsync -> acknowledgement order) or
 * fails chosen calls (ENOSPC, EIO, EACCES). Nothing in storage/maildir may
 * call node:fs directly for mail files: go through this.
 */
import * as fsp from 'node:fs/promises';
import { closeSync, constants, fsync, open, openSync, read, readSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Dirent, Stats } from 'node:fs';

export type { FileHandle };

export interface FsLayer {
  open(path: string, flags: string | number, mode?: number): Promise<FileHandle>;
  /** fsync a file through its handle. */
  fsync(handle: FileHandle): Promise<void>;
  /** fsync a directory, making renames/links/unlinks inside it durable. */
  fsyncDir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, mode?: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readdirWithTypes(path: string): Promise<Dirent[]>;
  stat(path: string): Promise<Stats>;
  lstat(path: string): Promise<Stats>;
  realpath(path: string): Promise<string>;
  readFile(path: string): Promise<Buffer>;
  /**
   * Read the start of a small file synchronously: open with `flags`, read
   * into `into` from offset 0 until it is full or the file ends, close.
   * Returns the octets read; `into.length` means the file may be longer.
   * Throws the errno error. It blocks the event loop, so it is only for
   * files known to be small (RETR of a message with a known size under
   * 128 KB): one synchronous open/read/close costs less than three round
   * trips through libuv's thread pool (bench:pop3, one client: 5-6k ->
   * 9-11k msg/s).
   */
  readSync(path: string, flags: number, into: Buffer): number;
  /**
   * Delivery's temporary files go by plain descriptors, not FileHandles:
   * open and fsync run on libuv's thread pool, while the writes (into the
   * page cache, about 64 KiB at most a call) and the close (after the fsync,
   * nothing left to flush) are synchronous. Every call to the pool waits
   * behind the fsyncs of concurrent deliveries, which hold its threads (4,
   * or 8 through bin/maildird) for milliseconds: with 4, a write and a
   * close through the pool cost 0.7-0.9 ms each on the way to a 250;
   * synchronously they cost 60 and 2 us of the event loop (bench:smtp, 20
   * senders: deliveries 4.1 -> 2.7 ms, 2,100-2,300 -> 2,400-2,700 msg/s).
   * A FileHandle would also cost an object, a finaliser and a promise per
   * call. The open stays in the pool: creating a file in tmp/ costs tens of
   * microseconds of kernel time under the directory's lock, which measured
   * 10% slower on the event loop.
   */
  openFd(path: string, flags: number, mode: number): Promise<number>;
  /** write(2) once; returns the octets written (may be short). */
  writeFdSync(fd: number, data: Buffer, offset: number, length: number): number;
  /** pread(2) through the pool. */
  readFd(fd: number, into: Buffer, offset: number, length: number, position: number): Promise<number>;
  fsyncFd(fd: number): Promise<void>;
  /** close(2). The descriptor is gone afterwards even when it throws (Linux releases it on any error). */
  closeFdSync(fd: number): void;
  /** Plain write, not durable on its own: callers that need durability open, write, fsync. */
  writeFile(path: string, data: string | Buffer, mode?: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  utimes(path: string, atime: Date, mtime: Date): Promise<void>;
}

export const nodeFs: FsLayer = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  fsync: (handle) => handle.sync(),
  // Opening and closing a directory are cheap and never wait for the disk:
  // done synchronously, only the fsync goes to the pool (see openFd).
  async fsyncDir(path) {
    const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await fsyncPromise(fd);
    } finally {
      closeSync(fd);
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  link: (existing, newPath) => fsp.link(existing, newPath),
  unlink: (path) => fsp.unlink(path),
  mkdir: async (path, mode) => {
    await fsp.mkdir(path, { mode: mode ?? 0o700 });
  },
  rmdir: (path) => fsp.rmdir(path),
  readdir: (path) => fsp.readdir(path),
  readdirWithTypes: (path) => fsp.readdir(path, { withFileTypes: true }),
  stat: (path) => fsp.stat(path),
  lstat: (path) => fsp.lstat(path),
  realpath: (path) => fsp.realpath(path),
  readFile: (path) => fsp.readFile(path),
  readSync(path, flags, into) {
    const fd = openSync(path, flags);
    try {
      let length = 0;
      while (length < into.length) {
        const n = readSync(fd, into, length, into.length - length, length);
        if (n === 0) break;
        length += n;
      }
      return length;
    } finally {
      closeSync(fd);
    }
  },
  openFd: (path, flags, mode) =>
    new Promise((resolve, reject) => open(path, flags, mode, (err, fd) => (err === null ? resolve(fd) : reject(err)))),
  writeFdSync: (fd, data, offset, length) => writeSync(fd, data, offset, length),
  readFd: (fd, into, offset, length, position) =>
    new Promise((resolve, reject) =>
      read(fd, into, offset, length, position, (err, n) => (err === null ? resolve(n) : reject(err))),
    ),
  fsyncFd: (fd) => fsyncPromise(fd),
  closeFdSync: (fd) => closeSync(fd),
  writeFile: (path, data, mode) => fsp.writeFile(path, data, { mode: mode ?? 0o600 }),
  chown: (path, uid, gid) => fsp.chown(path, uid, gid),
  utimes: (path, atime, mtime) => fsp.utimes(path, atime, mtime),
};

function fsyncPromise(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err === null ? resolve() : reject(err))));
}
