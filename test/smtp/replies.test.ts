import t from 'tap';
import { SmtpReplyError, StorageError, type StorageErrorKind } from '../../src/errors.js';
import { REPLIES, splitEnhanced, toServerError, toSmtpReply } from '../../src/smtp/replies.js';

t.test('toSmtpReply maps every StorageError kind', async (t) => {
  const expected: Record<StorageErrorKind, string> = {
    quota: '552 5.2.2',
    'no-space': '452 4.3.1',
    'too-large': '552 5.3.4',
    temporary: '451 4.3.0',
    'in-use': '451 4.3.0',
    'not-found': '550 5.1.1',
    permanent: '451 4.3.0',
    'invalid-name': '554 5.3.0',
  };
  for (const [kind, code] of Object.entries(expected)) {
    const reply = toSmtpReply(new StorageError(kind as StorageErrorKind, 'internal detail /var/mail/x'));
    t.equal(`${reply.replyCode} ${reply.enhancedCode}`, code, kind);
    t.notMatch(reply.message, /internal detail/, `${kind}: no internals on the wire`);
  }
  const soft = toSmtpReply(new StorageError('quota', 'x'), { quotaIsTemporary: true });
  t.equal(`${soft.replyCode} ${soft.enhancedCode}`, '452 4.2.2');
});

t.test('SmtpReplyError passes through; anything else is a generic temporary failure', async (t) => {
  const own = new SmtpReplyError(550, '5.7.1', 'no');
  t.equal(toSmtpReply(own), own);
  const other = toSmtpReply(new TypeError('boom at line 3'));
  t.equal(`${other.replyCode} ${other.enhancedCode} ${other.message}`, `451 4.3.0 ${REPLIES.temporary.text}`);
});

t.test('the enhanced code travels at the start of the text', async (t) => {
  const err = toServerError(new SmtpReplyError(554, '5.7.1', 'Relay access denied'));
  t.equal(err.responseCode, 554);
  t.equal(err.message, '5.7.1 Relay access denied');
  t.same(splitEnhanced(554, err.message), { enhanced: '5.7.1', text: 'Relay access denied' });
  t.equal(splitEnhanced(250, '5.7.1 x'), undefined, 'class must match the reply code');
  t.equal(splitEnhanced(550, 'Error: no code'), undefined);
  t.same(splitEnhanced(550, '5.1.10 long detail'), { enhanced: '5.1.10', text: 'long detail' });
});
