/**
 * Plays every transcript in fixtures/sessions/ (format in its README)
 * against a live server, on every store kind.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { messages, startPop3, STORE_KINDS } from '../helpers/pop3-harness.ts';
import { LineClient } from '../helpers/pop3-client.ts';
import type { Pop3ServerOptions } from '../../src/pop3/server.ts';

const dir = new URL('../../fixtures/sessions/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

interface Transcript {
  readonly mail: Record<string, string[]>;
  readonly options: Partial<Pop3ServerOptions>;
  readonly steps: readonly ({ kind: 'send'; lines: string[] } | { kind: 'expect'; line: string } | { kind: 'match'; pattern: RegExp } | { kind: 'closed' })[];
}

function parse(text: string): Transcript {
  const mail: Record<string, string[]> = {};
  let options: Partial<Pop3ServerOptions> = {};
  const steps: Transcript['steps'][number][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('@mail ')) {
      const [, user, count] = line.split(' ');
      mail[user as string] = messages(Number(count));
    } else if (line.startsWith('@option ')) {
      options = { ...options, ...(JSON.parse(line.slice(8)) as Partial<Pop3ServerOptions>) };
    } else if (line.startsWith('C: ')) {
      const last = steps[steps.length - 1];
      if (last?.kind === 'send') last.lines.push(line.slice(3));
      else steps.push({ kind: 'send', lines: [line.slice(3)] });
    } else if (line === 'S: <closed>') {
      steps.push({ kind: 'closed' });
    } else if (line.startsWith('S:')) {
      steps.push({ kind: 'expect', line: line.slice(3) });
    } else if (line.startsWith('S~ ')) {
      steps.push({ kind: 'match', pattern: new RegExp(line.slice(3)) });
    } else {
      throw new Error(`unreadable transcript line: ${line}`);
    }
  }
  return { mail, options, steps };
}

t.ok(files.length >= 5, `${files.length} transcripts`);

for (const kind of STORE_KINDS) {
  for (const file of files) {
    t.test(`${kind}: ${file}`, async (t) => {
      const transcript = parse(readFileSync(new URL(file, dir), 'utf8'));
      const h = await startPop3(t, { kind, mail: transcript.mail, server: transcript.options });
      const client = await LineClient.connect(h.port);
      t.teardown(() => client.destroy());
      for (const step of transcript.steps) {
        switch (step.kind) {
          case 'send':
            client.send(...step.lines);
            break;
          case 'expect':
            t.equal(await client.line(), step.line);
            break;
          case 'match':
            t.match(await client.line(), step.pattern);
            break;
          case 'closed':
            t.equal(await client.closed(), '', 'closed with nothing more');
            break;
        }
      }
    });
  }
}
