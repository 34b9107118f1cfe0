/**
 * The demo tree `npm start` serves (maildir.example/): how to recognise it
 * and what to print so a person can log in at once. The passwords here are
 * the ones documented in maildir.example/README.md; a test checks them
 * against maildir.example/passwd.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BoundListener } from './frontends.js';

/** dist/cli/example.js and src/cli/example.ts both sit two levels below the package root. */
export const EXAMPLE_CONFIG_FILE = fileURLToPath(new URL('../../maildir.example/maildird.json', import.meta.url));

export const EXAMPLE_USERS: readonly { readonly name: string; readonly password: string; readonly note: string }[] = [
  { name: 'alice', password: 'wonderland', note: 'ARGON2ID; Maildir with new, read and trashed mail' },
  { name: 'bob', password: 'builder', note: 'PLAIN, so CRAM-MD5 and APOP can work when turned on' },
  { name: 'carol', password: 'singer', note: 'SHA512-CRYPT; flat folder of .eml files' },
];

export function isExampleConfig(configFile: string | undefined): boolean {
  return configFile !== undefined && path.resolve(configFile) === EXAMPLE_CONFIG_FILE;
}

/** What the running config turned on, for the hints. */
export interface ExampleSwitches {
  readonly cramMd5: boolean;
  readonly apop: boolean;
}

/** Lines telling how to log in with the example users over the listeners that are actually up. */
export function exampleLoginLines(bound: readonly BoundListener[], switches: ExampleSwitches = { cramMd5: false, apop: false }): string[] {
  const lines = ['', 'Example users (maildir.example/README.md):'];
  for (const user of EXAMPLE_USERS) lines.push(`  ${user.name.padEnd(6)} password ${user.password.padEnd(11)} (${user.note})`);
  const pop3 = bound.find((listener) => listener.name === 'pop3');
  const pop3s = bound.find((listener) => listener.name === 'pop3s');
  if (pop3 !== undefined || pop3s !== undefined) lines.push('Try:');
  if (pop3 !== undefined) {
    // curl prefers APOP, then CRAM-MD5, when offered, and those cannot work for hashed
    // passwords: with either on, alice asks for SASL PLAIN, which loopback allows.
    const plain = switches.cramMd5 || switches.apop ? '--login-options AUTH=PLAIN ' : '';
    lines.push(`  curl ${plain}pop3://alice:wonderland@${pop3.address}/     (list alice's messages)`);
    lines.push(`  curl ${plain}pop3://alice:wonderland@${pop3.address}/1    (read message 1)`);
    const how = switches.apop ? 'APOP' : switches.cramMd5 ? 'CRAM-MD5' : 'PLAIN';
    lines.push(`  curl pop3://bob:builder@${pop3.address}/     (bob logs in with ${how})`);
    if (!switches.cramMd5) lines.push('  MAILDIRD_CRAM_MD5=true npm start    (offer CRAM-MD5 to bob, whose password is stored {PLAIN})');
  }
  if (pop3s !== undefined) {
    const port = pop3s.address.slice(pop3s.address.lastIndexOf(':') + 1);
    lines.push(`  curl --cacert maildir.example/demo-cert.pem pop3s://bob:builder@localhost:${port}/`);
  }
  const smtp = bound.find((listener) => listener.name === 'smtp');
  if (smtp !== undefined) {
    lines.push(`  swaks --server ${smtp.address} --from you@example.net --to carol@example.org   (deliver to carol)`);
  }
  return lines;
}
