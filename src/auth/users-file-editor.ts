/**
 * Edits of the users file for `maildird user add|passwd|del|list`.
 *
 * Each edit rewrites the file atomically: the new content goes to a temp
 * file in the same folder (mode 0600, or the old file's mode and owner),
 * which is fsynced, renamed over the file, and the folder fsynced; a reader
 * (the server's watcher, Dovecot) sees the old file or the new one, never
 * half of one. Lines the edit does not touch stay byte for byte, comments,
 * blank lines, CRLF line ends and lines that do not parse included; an
 * edited line keeps every field but the password.
 *
 * Two editors running at once can still lose one edit (both read, both
 * rename); run them one at a time.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { formatPasswdLine, parsePasswdFile, parsePasswdLine, userKey, userNameProblem } from './passwd-file.js';
import type { ExtraField, PasswdFile } from './passwd-file.js';
import { formatDovecotSize } from './quota-rule.js';
import { DEFAULT_NEW_SCHEME, hashPassword } from './password.js';
import { UsersFileError, readUsersFileBytes } from './users-file-error.js';

export interface EditOptions {
  /** Names equal but for case are the same user (as the server's caseInsensitive setting). */
  readonly caseInsensitive?: boolean;
}

export interface PasswordEditOptions extends EditOptions {
  /** Scheme for the new password; default ARGON2ID. */
  readonly scheme?: string;
}

export interface AddUserOptions extends PasswordEditOptions {
  readonly uid?: number;
  readonly gid?: number;
  readonly gecos?: string;
  readonly home?: string;
  readonly shell?: string;
  /** Written as `userdb_quota_rule=*:storage=<size>`; 0 unlimited. */
  readonly quotaBytes?: number;
  /** Written as `userdb_quota_rule2=*:messages=<n>`; 0 unlimited. */
  readonly quotaMessages?: number;
  /** More extra fields, after the quota rules. */
  readonly extraFields?: readonly ExtraField[];
}

/** One line of the file as it stands: its bytes without `\n` (a `\r` kept), and the user it names. */
interface FileLine {
  readonly bytes: Buffer;
  /** userKey of the first field, for lines that are neither comments nor blank. */
  readonly key: string | undefined;
  /** Why the line does not parse, if it does not. */
  readonly problem: string | undefined;
}

interface FileState {
  readonly path: string;
  readonly lines: FileLine[];
  /** Whether the last line ended with `\n`. */
  readonly endsWithNewline: boolean;
  /** `\r\n` if the file uses CRLF line ends, else `\n`. */
  readonly eol: string;
}

function validName(name: string): string {
  const problem = userNameProblem(name);
  if (problem !== undefined) throw new UsersFileError('invalid-name', `invalid user name ${JSON.stringify(name)}: ${problem}`);
  return name;
}

function validPassword(password: string): string {
  if (password === '') throw new UsersFileError('invalid-field', 'the password is empty');
  return password;
}

async function newHash(password: string, scheme: string | undefined): Promise<string> {
  try {
    return await hashPassword(password, scheme ?? DEFAULT_NEW_SCHEME);
  } catch (err) {
    throw new UsersFileError('invalid-field', (err as Error).message, { cause: err });
  }
}

/** The file the name points at (edits go beside a symlink's target, not over the link). */
async function targetOf(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Split into lines of bytes: lines we do not edit are written back exactly, even if they are not UTF-8. */
function splitLines(content: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < content.length) {
    let end = content.indexOf(0x0a, start);
    if (end === -1) end = content.length;
    lines.push(content.subarray(start, end));
    start = end + 1;
  }
  return lines;
}

function describeLine(bytes: Buffer, line: number, caseInsensitive: boolean): FileLine {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    // Not UTF-8: the name is whatever the first field says, read loosely, so del can still remove it.
    const first = bytes.toString('utf8').split(':', 1)[0] ?? '';
    return { bytes, key: userKey(first, caseInsensitive), problem: 'line is not valid UTF-8' };
  }
  const bare = text.endsWith('\r') ? text.slice(0, -1) : text;
  const parsed = parsePasswdLine(bare, line);
  if (parsed.kind === 'blank' || parsed.kind === 'comment') return { bytes, key: undefined, problem: undefined };
  const first = bare.split(':', 1)[0] ?? '';
  return { bytes, key: userKey(first, caseInsensitive), problem: parsed.kind === 'error' ? parsed.reason : undefined };
}

async function readState(path: string, options: EditOptions, missingIsEmpty: boolean): Promise<FileState> {
  const target = await targetOf(path);
  let content: Buffer;
  try {
    content = await readFile(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missingIsEmpty) {
      content = Buffer.alloc(0);
    } else {
      throw new UsersFileError('unreadable', `cannot read the users file ${path}: ${code ?? (err as Error).message}`, { cause: err });
    }
  }
  const caseInsensitive = options.caseInsensitive ?? false;
  const lines = splitLines(content).map((bytes, i) => describeLine(bytes, i + 1, caseInsensitive));
  const first = lines[0]?.bytes;
  const eol = first !== undefined && first.length > 0 && first[first.length - 1] === 0x0d ? '\r\n' : '\n';
  const endsWithNewline = content.length > 0 && content[content.length - 1] === 0x0a;
  return { path: target, lines, endsWithNewline, eol };
}

/** Lines back to bytes: each ends with `\n` except an old last line that had none. */
function render(state: FileState, lines: readonly Buffer[], lastWasOld: boolean): Buffer {
  const parts: Buffer[] = [];
  lines.forEach((line, i) => {
    parts.push(line);
    const isLast = i === lines.length - 1;
    if (!(isLast && lastWasOld && !state.endsWithNewline)) parts.push(NEWLINE);
  });
  return Buffer.concat(parts);
}

const NEWLINE = Buffer.from('\n');

function matching(state: FileState, name: string, options: EditOptions): number[] {
  const key = userKey(name, options.caseInsensitive ?? false);
  return state.lines.flatMap((line, i) => (line.key === key ? [i] : []));
}

/**
 * Write `data` to `path` so that readers see the old or the new file, never
 * a mix: temp file in the same folder (created 0600, then given the old
 * file's mode and, when we may, owner), fsync, rename over, fsync the folder.
 */
export async function writeFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const old = await stat(path).catch(() => undefined);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      if (old !== undefined) {
        if ((old.mode & 0o7777) !== 0o600) await handle.chmod(old.mode & 0o7777);
        // Keep a root-owned file readable by the group Dovecot or maildird runs as.
        if (process.getuid?.() === 0 && (old.uid !== 0 || old.gid !== 0)) await handle.chown(old.uid, old.gid);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw new UsersFileError('write-failed', `cannot write the users file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
  // The rename is durable only once the folder is.
  try {
    const dir = await open(folder, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    throw new UsersFileError('write-failed', `cannot fsync ${folder}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
}

/** Add a user with a new password (ARGON2ID unless `scheme`). Creates the file if it does not exist. */
export async function addUser(path: string, name: string, password: string, options: AddUserOptions = {}): Promise<void> {
  validName(name);
  validPassword(password);
  const before = await readState(path, options, true);
  const clash = matching(before, name, options)[0];
  if (clash !== undefined) {
    throw new UsersFileError('duplicate-user', `user ${name} already exists (${path} line ${clash + 1})`);
  }
  const extraFields: ExtraField[] = [];
  if (options.quotaBytes !== undefined) {
    extraFields.push({ key: 'userdb_quota_rule', value: `*:storage=${formatDovecotSize(options.quotaBytes)}` });
  }
  if (options.quotaMessages !== undefined) {
    extraFields.push({ key: 'userdb_quota_rule2', value: `*:messages=${options.quotaMessages}` });
  }
  extraFields.push(...(options.extraFields ?? []));
  const hashed = await newHash(password, options.scheme);
  let line: string;
  try {
    line = formatPasswdLine({
      name,
      password: hashed,
      uid: options.uid,
      gid: options.gid,
      gecos: options.gecos,
      home: options.home,
      shell: options.shell,
      extraFields,
    });
  } catch (err) {
    throw new UsersFileError('invalid-field', (err as Error).message, { cause: err });
  }
  const parsed = parsePasswdLine(line, 1);
  if (parsed.kind !== 'entry') {
    throw new UsersFileError('invalid-field', `the new line for ${name} would not parse: ${parsed.kind === 'error' ? parsed.reason : parsed.kind}`);
  }
  // Read again after the slow hash: the file is what it is now, not 300 ms ago.
  const state = await readState(path, options, true);
  const again = matching(state, name, options)[0];
  if (again !== undefined) throw new UsersFileError('duplicate-user', `user ${name} already exists (${path} line ${again + 1})`);
  const eolSuffix = state.eol === '\r\n' ? '\r' : '';
  const lines = [...state.lines.map((l) => l.bytes), Buffer.from(line + eolSuffix, 'utf8')];
  await writeFileAtomically(state.path, render(state, lines, false));
}

/** Replace a user's password (ARGON2ID unless `scheme`), keeping every other field of the line. */
export async function setPassword(path: string, name: string, password: string, options: PasswordEditOptions = {}): Promise<void> {
  validName(name);
  validPassword(password);
  // Fail before the slow hash when the user is missing; check again after it.
  findEditable(await readState(path, options, false), name, options, path);
  const hashed = await newHash(password, options.scheme);
  const state = await readState(path, options, false);
  const indexes = new Set(findEditable(state, name, options, path));
  const lines = state.lines.map(({ bytes }, i) => {
    if (!indexes.has(i)) return bytes;
    // Only the second field changes; the line parsed, so it is UTF-8 and has a first colon.
    const text = bytes.toString('utf8');
    const colon = text.indexOf(':');
    const second = text.indexOf(':', colon + 1);
    const rest = second !== -1 ? text.slice(second) : text.endsWith('\r') ? '\r' : '';
    return Buffer.from(`${text.slice(0, colon)}:${hashed}${rest}`, 'utf8');
  });
  await writeFileAtomically(state.path, render(state, lines, true));
}

function findEditable(state: FileState, name: string, options: EditOptions, path: string): number[] {
  const indexes = matching(state, name, options);
  if (indexes.length === 0) throw new UsersFileError('no-such-user', `no user ${name} in ${path}`);
  for (const i of indexes) {
    const problem = state.lines[i]?.problem;
    if (problem !== undefined) {
      throw new UsersFileError('broken-file', `${path} line ${i + 1} (user ${name}) does not parse: ${problem}; fix it first`, {
        lines: [{ line: i + 1, reason: problem, name }],
      });
    }
  }
  return indexes;
}

/** Remove every line for the user (a broken one too: the operator wants them gone). The mail folder is not touched. */
export async function deleteUser(path: string, name: string, options: EditOptions = {}): Promise<void> {
  validName(name);
  const state = await readState(path, options, false);
  const indexes = new Set(matching(state, name, options));
  if (indexes.size === 0) throw new UsersFileError('no-such-user', `no user ${name} in ${path}`);
  const lines = state.lines.flatMap((l, i) => (indexes.has(i) ? [] : [l.bytes]));
  // Only the file's own last line may lack a line end; a line that had one keeps it.
  const lastKept = !indexes.has(state.lines.length - 1);
  await writeFileAtomically(state.path, render(state, lines, lastKept));
}

/** The whole file parsed: entries, per-line errors, warnings. Throws UsersFileError('unreadable'). */
export async function readUsersFile(path: string, options: EditOptions = {}): Promise<PasswdFile> {
  const content = await readUsersFileBytes(path);
  return parsePasswdFile(content, options);
}

/** The user names, in file order (lines that do not parse are left out; readUsersFile reports them). */
export async function listUsers(path: string, options: EditOptions = {}): Promise<string[]> {
  return (await readUsersFile(path, options)).entries.map((e) => e.name);
}
