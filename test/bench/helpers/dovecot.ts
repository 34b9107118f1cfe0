/**
 * Dovecot pop3d as a private peer (PEERS.md "Dovecot pop3d as a private
 * peer"): its own base_dir, state_dir and instance name, loopback only, no
 * TLS, PLAIN passwords from the same passwd file maildird reads, mail as an
 * unprivileged uid (Dovecot refuses uid 0). Everything else is Dovecot's
 * built-in default, as a Debian install has it (one pop3-login process per
 * connection, one pop3 process per session).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DovecotSetup {
  readonly workDir: string;
  readonly root: string;
  readonly passwdFile: string;
  readonly port: number;
  readonly uid: number;
  readonly gid: number;
}

/** `dovecot --version`, or undefined when Dovecot is not installed. */
export function dovecotVersion(): string | undefined {
  const result = spawnSync('dovecot', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Writes `<workDir>/dovecot.conf` and returns its path. */
export function writeDovecotConfig(setup: DovecotSetup): string {
  const base = join(setup.workDir, 'dovecot');
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const file = join(setup.workDir, 'dovecot.conf');
  writeFileSync(
    file,
    [
      'protocols = pop3',
      'listen = 127.0.0.1',
      `base_dir = ${join(base, 'run')}`,
      `state_dir = ${join(base, 'state')}`,
      `instance_name = maildird-bench-${process.pid}`,
      `log_path = ${join(setup.workDir, 'dovecot.log')}`,
      'ssl = no',
      'disable_plaintext_auth = no',
      'auth_mechanisms = plain',
      `mail_location = maildir:${setup.root}/%u`,
      `first_valid_uid = ${Math.min(setup.uid, 1000)}`,
      'passdb {',
      '  driver = passwd-file',
      `  args = scheme=PLAIN ${setup.passwdFile}`,
      '}',
      'userdb {',
      '  driver = static',
      `  args = uid=${setup.uid} gid=${setup.gid} home=${setup.root}/%u`,
      '}',
      'service pop3-login {',
      '  inet_listener pop3 {',
      '    address = 127.0.0.1',
      `    port = ${setup.port}`,
      '  }',
      '  inet_listener pop3s {',
      '    port = 0',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  return file;
}

/** Cold for Dovecot: its index files, dovecot-uidlist and friends removed from a maildrop. */
export function removeDovecotState(maildropDir: string): number {
  let removed = 0;
  for (const name of readdirSync(maildropDir)) {
    if (!name.startsWith('dovecot')) continue;
    rmSync(join(maildropDir, name), { force: true, recursive: true });
    removed++;
  }
  return removed;
}
