/**
 * The aliases file, in the usual sendmail/Postfix `aliases(5)` form:
 *
 *   # comment
 *   postmaster: alice
 *   sales:      bob, carol@example.org
 *   abuse@example.org: alice
 *       , dave              (a line starting with white space continues the one before)
 *
 * A key is a local part (valid in every local domain) or a full address
 * (that domain only); keys are matched without regard to case. Targets are
 * local users, local addresses or other aliases. Commands (`|prog`), files
 * (`/path`) and `:include:` are refused: maildird never runs a program or
 * writes a file because of an address (DESIGN.md invariant 4).
 *
 * This module takes text; whoever reads the file (the CLI) calls
 * `AliasTable.reload(text)` when it changes.
 */
import { ConfigError } from '../errors.js';

export type AliasMap = ReadonlyMap<string, readonly string[]>;

/** Parse aliases text; throws ConfigError naming the line at the first problem. */
export function parseAliases(text: string, source = 'aliases'): AliasMap {
  const map = new Map<string, string[]>();
  let current: { key: string; line: number; targets: string[] } | undefined;
  const finish = (): void => {
    if (current === undefined) return;
    if (current.targets.length === 0) {
      throw new ConfigError(`${source} line ${current.line}: alias "${current.key}" has no targets`, { key: 'aliases' });
    }
    map.set(current.key, current.targets);
    current = undefined;
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const lineNo = i + 1;
    if (/^\s*(#|$)/.test(raw)) continue;
    if (/^[ \t]/.test(raw)) {
      if (current === undefined) {
        throw new ConfigError(`${source} line ${lineNo}: continuation line without an alias before it`, { key: 'aliases' });
      }
      current.targets.push(...parseTargets(raw, source, lineNo));
      continue;
    }
    finish();
    const colon = raw.indexOf(':');
    if (colon <= 0) throw new ConfigError(`${source} line ${lineNo}: expected "alias: target, ..."`, { key: 'aliases' });
    const key = raw.slice(0, colon).trim().toLowerCase();
    if (!/^[^\s@"]+(@[^\s@"]+)?$/.test(key)) {
      throw new ConfigError(`${source} line ${lineNo}: bad alias name "${key}"`, { key: 'aliases' });
    }
    if (map.has(key)) throw new ConfigError(`${source} line ${lineNo}: alias "${key}" is defined twice`, { key: 'aliases' });
    current = { key, line: lineNo, targets: parseTargets(raw.slice(colon + 1), source, lineNo) };
  }
  finish();
  for (const targets of map.values()) dedupe(targets);
  return map;
}

function parseTargets(text: string, source: string, lineNo: number): string[] {
  const targets: string[] = [];
  for (const part of text.split(',')) {
    const target = part.trim();
    if (target === '') continue;
    if (/^[|/]/.test(target) || /^:include:/i.test(target)) {
      throw new ConfigError(`${source} line ${lineNo}: "${target}": program, file and :include: targets are not supported`, {
        key: 'aliases',
      });
    }
    if (!/^[^\s@"<>]+(@[^\s@"<>]+)?$/.test(target)) {
      throw new ConfigError(`${source} line ${lineNo}: bad target "${target}"`, { key: 'aliases' });
    }
    targets.push(target);
  }
  return targets;
}

function dedupe(targets: string[]): void {
  const seen = new Set<string>();
  let w = 0;
  for (const target of targets) {
    const k = target.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    targets[w++] = target;
  }
  targets.length = w;
}

/** The current alias map, swapped whole on reload so a lookup never sees half a file. */
export class AliasTable {
  #map: AliasMap;

  constructor(text = '', source = 'aliases') {
    this.#map = parseAliases(text, source);
  }

  /** Replace the table; on a parse error the old table stays and the ConfigError is thrown. */
  reload(text: string, source = 'aliases'): void {
    this.#map = parseAliases(text, source);
  }

  get size(): number {
    return this.#map.size;
  }

  /**
   * Targets for `local@domain`: the full-address key first, then the bare
   * local part. undefined when neither is an alias.
   */
  expand(localPart: string, domain: string | undefined): readonly string[] | undefined {
    const local = localPart.toLowerCase();
    if (domain !== undefined) {
      const full = this.#map.get(`${local}@${domain.toLowerCase()}`);
      if (full !== undefined) return full;
    }
    return this.#map.get(local);
  }
}
