/**
 * Guards DESIGN.md's dependency rules by scanning every import in src/.
 * A rule broken here is a design change: change DESIGN.md in the same commit
 * or move the code.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fg from 'fast-glob';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = resolve(repo, 'src');

interface SourceFile {
  /** Path relative to src/, with forward slashes. */
  readonly path: string;
  readonly text: string;
  /** Import specifiers; relative ones resolved to paths relative to src/ (or '../x' when outside). */
  readonly imports: readonly string[];
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function loadSources(): SourceFile[] {
  return fg.sync('**/*.ts', { cwd: srcDir }).map((path) => {
    const text = readFileSync(resolve(srcDir, path), 'utf8');
    const imports: string[] = [];
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec === undefined) continue;
      if (spec.startsWith('.')) {
        imports.push(relative(srcDir, resolve(srcDir, dirname(path), spec)).split(sep).join('/'));
      } else {
        imports.push(spec);
      }
    }
    return { path, text, imports };
  });
}

const sources = loadSources();
const under = (prefix: string) => sources.filter((f) => f.path.startsWith(prefix));
const FS_MODULES = ['fs', 'node:fs', 'fs/promises', 'node:fs/promises', 'fast-glob', 'chokidar'];

t.test('the scan sees the source tree', async (t) => {
  t.ok(sources.length >= 5, `scanned ${sources.length} files`);
  t.ok(sources.some((f) => f.path === 'storage/store.ts'));
  const store = sources.find((f) => f.path === 'storage/store.ts');
  t.ok(store?.imports.includes('errors.js'), 'relative imports are resolved against src/');
});

t.test('front-ends and protocol never touch files or the Maildir adapter', async (t) => {
  for (const f of [...under('pop3/'), ...under('smtp/'), ...under('protocol/')]) {
    for (const spec of f.imports) {
      t.notOk(FS_MODULES.includes(spec), `${f.path} imports ${spec}`);
      t.notOk(spec.startsWith('storage/maildir'), `${f.path} imports ${spec}`);
    }
  }
});

t.test('pop3 and smtp never import each other', async (t) => {
  for (const f of under('pop3/')) for (const s of f.imports) t.notOk(s.startsWith('smtp/'), `${f.path} imports ${s}`);
  for (const f of under('smtp/')) for (const s of f.imports) t.notOk(s.startsWith('pop3/'), `${f.path} imports ${s}`);
});

t.test('the storage layer never imports a front-end or the CLI', async (t) => {
  for (const f of under('storage/')) {
    for (const s of f.imports) {
      t.notOk(/^(pop3|smtp|protocol|cli)\//.test(s), `${f.path} imports ${s}`);
    }
  }
});

t.test('only storage/maildir (and the user database, the CLI and config) reads files', async (t) => {
  const allowed = /^(storage\/maildir\/|auth\/|cli\/|config\/|log\/)/;
  for (const f of sources) {
    if (allowed.test(f.path)) continue;
    for (const s of f.imports) t.notOk(FS_MODULES.includes(s), `${f.path} imports ${s}`);
  }
});

t.test('pino only in src/log, yargs only in src/cli', async (t) => {
  for (const f of sources) {
    for (const s of f.imports) {
      if (s === 'pino' || s.startsWith('pino-')) t.ok(f.path.startsWith('log/'), `${f.path} imports ${s}`);
      if (s === 'yargs' || s.startsWith('yargs/')) t.ok(f.path.startsWith('cli/'), `${f.path} imports ${s}`);
    }
  }
});

t.test('only src/cli reads process.argv and process.env or installs signal handlers', async (t) => {
  for (const f of sources) {
    if (f.path.startsWith('cli/')) continue;
    t.notMatch(f.text, /process\.argv/, `${f.path} reads process.argv`);
    t.notMatch(f.text, /process\.env/, `${f.path} reads process.env`);
    t.notMatch(f.text, /process\.on\(\s*['"]SIG/, `${f.path} installs a signal handler`);
  }
});

t.test('src never imports test/ or fixtures/', async (t) => {
  for (const f of sources) {
    for (const s of f.imports) t.notOk(/^\.\.\/(test|fixtures)\//.test(s), `${f.path} imports ${s}`);
  }
});
