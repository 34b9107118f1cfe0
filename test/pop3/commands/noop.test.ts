import t from 'tap';
import { startPop3 } from '../../helpers/pop3-harness.ts';

t.test('NOOP in TRANSACTION; no arguments', async (t) => {
  const h = await startPop3(t, { kind: 'maildir' });
  const client = await h.login();
  await client.command('NOOP', '+OK');
  await client.command('noop', '+OK');
  await client.command('NOOP 1', '-ERR This command takes no arguments');
});
