/**
 * Maildrops for the batch tests: N messages with known names and bodies,
 * and a census that says where each one is now.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseMaildirName } from '../../src/storage/maildir/filename.js';
import type { MaildirPaths } from '../../src/storage/maildir/layout.js';
import type { BatchMessage, MessageLocation } from '../../src/storage/maildir/journal.js';

export interface TreeMessage extends BatchMessage {
  readonly base: string;
  readonly body: string;
}

/** Body of message i: unique, so a file can be recognised wherever it went. */
export const bodyOf = (i: number): string => `Subject: message ${i}\n\nbody of message ${i}\n`;

/**
 * Write `count` messages into `paths.dir`: Maildir form alternates new/ (no
 * info) and cur/ (`:2,` or `:2,S`); flat form writes `<base>.eml`.
 */
export function buildTree(paths: MaildirPaths, form: 'maildir' | 'flat', count: number): TreeMessage[] {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  if (form === 'maildir') for (const d of [paths.cur, paths.new, paths.tmp]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const out: TreeMessage[] = [];
  for (let i = 0; i < count; i++) {
    const body = bodyOf(i);
    const size = Buffer.byteLength(body);
    const wire = size + body.split('\n').length - 1;
    const base = `${1_700_000_000 + i}.M${i}P100Q${i}.testhost,S=${size},W=${wire}`;
    let location: MessageLocation;
    let file: string;
    if (form === 'flat') {
      location = 'flat';
      file = join(paths.dir, `${base}.eml`);
    } else if (i % 2 === 0) {
      location = 'new';
      file = join(paths.new, base);
    } else {
      location = 'cur';
      file = join(paths.cur, `${base}:2,${i % 4 === 1 ? 'S' : ''}`);
    }
    writeFileSync(file, body, { mode: 0o600 });
    out.push({ path: file, location, base, body });
  }
  return out;
}

export interface Place {
  /** new, cur, flat, trash-cur, trash-new, trash-flat */
  readonly where: string;
  readonly name: string;
  readonly body: string;
}

/** Every message file under the user folder, by base name (a base may be in several places in a broken tree). */
export function census(paths: MaildirPaths, form: 'maildir' | 'flat'): Map<string, Place[]> {
  const out = new Map<string, Place[]>();
  const add = (where: string, dir: string, strip: (name: string) => string | undefined) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const base = strip(name);
      if (base === undefined) continue;
      const list = out.get(base) ?? [];
      list.push({ where, name, body: readFileSync(join(dir, name), 'utf8') });
      out.set(base, list);
    }
  };
  const maildirBase = (name: string) => parseMaildirName(name)?.base;
  const emlBase = (name: string) => (name.endsWith('.eml') && !name.startsWith('.') ? name.slice(0, -4) : undefined);
  if (form === 'maildir') {
    add('new', paths.new, maildirBase);
    add('cur', paths.cur, maildirBase);
    add('trash-cur', paths.trashCur, maildirBase);
    add('trash-new', paths.trashNew, maildirBase);
  } else {
    add('flat', paths.dir, emlBase);
    add('trash-flat', paths.trashDir, emlBase);
  }
  return out;
}
