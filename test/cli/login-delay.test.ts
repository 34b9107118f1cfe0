/**
 * The `loginDelaySeconds` key through a real `maildird serve`: CAPA announces
 * LOGIN-DELAY, a second login of one user inside the delay gets `-ERR
 * [LOGIN-DELAY]`, another user is not held up; with two workers the second
 * login lands on the other worker (round-robin) and is held all the same.
 */
import t from 'tap';
import { LineClient } from '../helpers/pop3-client.js';
import { ServeProcess, portOf } from '../helpers/cli-run.js';

async function session(port: number, user: string, password: string, passReply: RegExp): Promise<string[]> {
  const client = await LineClient.connect(port);
  await client.expect(/^\+OK /);
  await client.command('CAPA', /^\+OK/);
  const capa = await client.lines();
  await client.command(`USER ${user}`, /^\+OK/);
  await client.command(`PASS ${password}`, passReply);
  await client.command('QUIT', /^\+OK/);
  await client.closed();
  return capa;
}

for (const workers of [1, 2]) {
  t.test(`loginDelaySeconds with ${workers} process${workers === 1 ? '' : 'es'}`, async (t) => {
    const dir = t.testdir({
      'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: false }, loginDelaySeconds: 600, workers }),
      passwd: 'alice:{PLAIN}wonder\nbob:{PLAIN}builder\n',
      mail: { alice: { cur: {}, new: {}, tmp: {} }, bob: { cur: {}, new: {}, tmp: {} } },
    });
    const serve = ServeProcess.start([], { cwd: dir });
    t.teardown(() => serve.stop('SIGKILL'));
    const lines = await serve.ready();
    const port = portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0');

    const capa = await session(port, 'alice', 'wonder', /^\+OK/);
    t.ok(capa.includes('LOGIN-DELAY 600'), `CAPA announces it: ${capa.join(' | ')}`);
    // The next connection goes to the other worker when there are two; the wait is shared.
    await session(port, 'alice', 'wonder', /^-ERR \[LOGIN-DELAY\]/);
    await session(port, 'alice', 'wonder', /^-ERR \[LOGIN-DELAY\]/);
    await session(port, 'bob', 'builder', /^\+OK/);
    const result = await serve.stop('SIGTERM');
    t.equal(result.code, 0);
  });
}

t.test('loginDelaySeconds off (the default): no LOGIN-DELAY in CAPA, logins back to back', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: false } }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: { alice: { cur: {}, new: {}, tmp: {} } },
  });
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const port = portOf(lines.find((l) => l.name === 'pop3')?.address ?? ':0');
  const capa = await session(port, 'alice', 'wonder', /^\+OK/);
  t.notOk(capa.some((line) => line.startsWith('LOGIN-DELAY')));
  await session(port, 'alice', 'wonder', /^\+OK/);
});
