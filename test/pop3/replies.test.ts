import t from 'tap';
import { Pop3Error, StorageError, type StorageErrorKind } from '../../src/errors.ts';
import { errLine, INTERNAL_ERROR_TEXT, okLine, toPop3Reply } from '../../src/pop3/replies.ts';
import { captureLogger } from '../helpers/maildir-tree.ts';

t.test('reply lines', async (t) => {
  t.equal(okLine(), '+OK\r\n');
  t.equal(okLine('fine'), '+OK fine\r\n');
  t.equal(errLine('no'), '-ERR no\r\n');
  t.equal(errLine('busy', 'IN-USE'), '-ERR [IN-USE] busy\r\n');
});

t.test('every StorageError kind maps to a response code', async (t) => {
  const { logger } = captureLogger();
  const expected: Record<StorageErrorKind, string> = {
    'in-use': '-ERR [IN-USE] Maildrop is locked by another session\r\n',
    'not-found': '-ERR [SYS/PERM] Message is no longer available (removed by another program)\r\n',
    temporary: '-ERR [SYS/TEMP] Temporary storage failure, try again later\r\n',
    'no-space': '-ERR [SYS/TEMP] Temporary storage failure, try again later\r\n',
    permanent: '-ERR [SYS/PERM] Maildrop is not available, contact the administrator\r\n',
    'invalid-name': '-ERR [SYS/PERM] Maildrop is not available, contact the administrator\r\n',
    'too-large': '-ERR [SYS/PERM] Maildrop is not available, contact the administrator\r\n',
    quota: '-ERR [SYS/PERM] Maildrop is not available, contact the administrator\r\n',
  };
  for (const [kind, line] of Object.entries(expected)) {
    t.equal(toPop3Reply(new StorageError(kind as StorageErrorKind, `/secret/path ${kind}`), logger), line, kind);
  }
});

t.test('Pop3Error carries its text; anything else is logged and hidden', async (t) => {
  const { logger, records } = captureLogger();
  t.equal(toPop3Reply(new Pop3Error('wait', 'LOGIN-DELAY'), logger), '-ERR [LOGIN-DELAY] wait\r\n');
  const line = toPop3Reply(new TypeError('cannot read x of undefined at /src/pop3/thing.ts:12'), logger);
  t.equal(line, `-ERR [SYS/TEMP] ${INTERNAL_ERROR_TEXT}\r\n`);
  t.notMatch(line, /undefined|src/);
  const logged = records.find((r) => r.msg === 'unexpected error in a POP3 command');
  t.equal(logged?.level, 50);
  t.match(JSON.stringify(logged), /cannot read x of undefined/);
});
