/**
 * Start-up checks for what must exist before a command does anything, each
 * failing with one line that names the config key and an exit code
 * (66, EX_NOINPUT): better than an ENOENT from deep inside the store.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { EXIT } from './exit-codes.js';

/** The root (or another folder) exists, is a folder and, with `isWritable`, can be written. */
export async function requireFolder(folder: string, key: string, isWritable: boolean): Promise<void> {
  let isFolder = false;
  try {
    isFolder = (await stat(folder)).isDirectory();
  } catch (err) {
    throw new ConfigError(`${key} ${folder}: ${why(err)}`, { key, exitCode: EXIT.noInput, cause: err });
  }
  if (!isFolder) throw new ConfigError(`${key} ${folder} is not a folder`, { key, exitCode: EXIT.noInput });
  try {
    await access(folder, constants.R_OK | constants.X_OK | (isWritable ? constants.W_OK : 0));
  } catch (err) {
    const what = isWritable ? 'readable and writable' : 'readable';
    throw new ConfigError(`${key} ${folder} is not ${what} by this user`, { key, exitCode: EXIT.noInput, cause: err });
  }
}

/** A file exists and can be read; `hint` says how to make one. */
export async function requireReadableFile(file: string, key: string, hint = ''): Promise<void> {
  try {
    if (!(await stat(file)).isFile()) {
      throw Object.assign(new Error('not a file'), { code: 'ENOTFILE' });
    }
    await access(file, constants.R_OK);
  } catch (err) {
    throw new ConfigError(`${key} ${file}: ${why(err)}${hint}`, { key, exitCode: EXIT.noInput, cause: err });
  }
}

function why(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'ENOTFILE':
      return 'not a file';
    default:
      return (err as Error).message;
  }
}
