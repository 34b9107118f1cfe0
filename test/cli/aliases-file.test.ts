/**
 * The aliases file of `serve` (src/cli/aliases-file.ts): loaded at start,
 * re-read on change (chokidar) and on SIGHUP (Reloader), a broken new file
 * refused with one log line and the previous aliases kept; a live SMTP
 * session's next RCPT sees a reload. Waits are for reload events, never
 * for time.
 */
import t from 'tap';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AliasesFile, type AliasesReloadEvent } from '../../src/cli/aliases-file.js';
import { ConfigError } from '../../src/errors.js';
import { codeOf } from '../helpers/smtp-client.js';
import { delivered, startSmtp } from '../helpers/smtp-setup.js';
import { captureLog } from '../helpers/log-capture.js';

/** The next reload event of `file` (from the watcher). */
function nextReload(file: AliasesFile): Promise<AliasesReloadEvent> {
  return new Promise((resolve) => {
    const off = file.onReload((event) => {
      off();
      resolve(event);
    });
  });
}

t.test('load: a missing or broken file is a ConfigError naming the key (and the line)', async (t) => {
  const dir = t.testdir({ broken: 'postmaster: alice\nsales bob\n', good: 'postmaster: alice\n' });
  const missing = await AliasesFile.load(path.join(dir, 'nope')).catch((e: unknown) => e);
  t.ok(missing instanceof ConfigError && missing.key === 'aliases', 'missing file');
  const broken = await AliasesFile.load(path.join(dir, 'broken')).catch((e: unknown) => e);
  t.ok(broken instanceof ConfigError && broken.key === 'aliases');
  t.match((broken as Error).message, /broken line 2: expected "alias: target, \.\.\."/);
  const good = await AliasesFile.load(path.join(dir, 'good'));
  t.same(good.table.expand('postmaster', 'example.org'), ['alice']);
  await good.close();
});

t.test('reload: new aliases taken; the same bytes are "unchanged"; a broken file refused with one log line, the old table kept', async (t) => {
  const dir = t.testdir({ aliases: 'postmaster: alice\n' });
  const file = path.join(dir, 'aliases');
  const { lines, logger } = captureLog('debug');
  const aliases = await AliasesFile.load(file, { logger });
  t.teardown(() => aliases.close());
  t.same(await aliases.reload(), { ok: true, changed: false, aliases: 1 });

  writeFileSync(file, 'postmaster: bob\nsales: alice, bob\n');
  t.same(await aliases.reload(), { ok: true, changed: true, aliases: 2 });
  t.same(aliases.table.expand('sales', undefined), ['alice', 'bob']);

  writeFileSync(file, 'postmaster: carol\nsales: |/usr/bin/evil\n');
  const before = lines.length;
  const refused = await aliases.reload();
  t.equal(refused.ok, false);
  t.same(aliases.table.expand('postmaster', undefined), ['bob'], 'the previous aliases stay, not half the new file');
  const logged = lines.slice(before);
  t.equal(logged.length, 1, 'one log line');
  t.match(logged[0], { level: 50, msg: 'aliases file refused, keeping the previous aliases', reason: /line 2: "\|\/usr\/bin\/evil"/ });

  writeFileSync(file, 'postmaster: carol\n');
  t.same(await aliases.reload(), { ok: true, changed: true, aliases: 1 }, 'a fixed file is taken again');
});

t.test('reload under a live SMTP session: the next RCPT sees the new aliases; a broken file changes nothing', async (t) => {
  // Not t.testdir(): the SMTP harness takes this test's one for its Maildir tree.
  const dir = mkdtempSync(path.join(tmpdir(), 'maildird-aliases-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'aliases');
  writeFileSync(file, 'postmaster: alice\n');
  const { lines, logger } = captureLog('debug');
  const aliases = await AliasesFile.load(file, { logger });
  t.teardown(() => aliases.close());
  await aliases.watch();
  const h = await startSmtp(t, { aliases: aliases.table });
  const c = await h.connect();
  await c.ehlo();
  t.equal(codeOf(await c.command('MAIL FROM:<s@remote.example>')), '250 2.1.0');
  t.equal(codeOf(await c.command('RCPT TO:<sales@example.org>')), '550 5.1.1', 'not an alias yet');

  // Saved the way editors and `mv` do: a new file renamed over the old one.
  let reloaded = nextReload(aliases);
  writeFileSync(path.join(dir, 'aliases.new'), 'postmaster: alice\nsales: bob, someone@remote.example\n');
  renameSync(path.join(dir, 'aliases.new'), file);
  t.same(await reloaded, { ok: true, changed: true, aliases: 2 }, 'the watcher reloaded the file');
  t.equal(codeOf(await c.command('RCPT TO:<sales@example.org>')), '250 2.1.5', 'the same session sees the new alias');

  reloaded = nextReload(aliases);
  const before = lines.length;
  writeFileSync(file, 'sales: alice\nthis is not an alias line\n');
  t.equal((await reloaded).ok, false, 'the broken file is refused');
  t.equal(lines.slice(before).filter((l) => l['msg'] === 'aliases file refused, keeping the previous aliases').length, 1, 'one log line');
  t.equal(codeOf(await c.command('RCPT TO:<postmaster@example.org>')), '250 2.1.5', 'the old table is still in force');
  t.equal((await c.command('DATA')).code, 354);
  c.write('Subject: to sales\r\n\r\nhello\r\n.\r\n');
  t.equal(codeOf(await c.reply()), '250 2.0.0');
  await c.quit();
  const root = h.root ?? '';
  t.equal((await delivered(root, 'bob')).length, 1, 'sales -> bob (the alias from before the broken file)');
  t.equal((await delivered(root, 'alice')).length, 1, 'postmaster -> alice');
  t.same((await readdir(root)).sort(), ['alice', 'bob'], 'a target outside the local domains is ignored (aliases never relay)');
});
