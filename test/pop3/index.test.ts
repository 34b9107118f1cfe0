import t from 'tap';
import * as pop3 from '../../src/pop3/index.ts';

t.test('the public surface', async (t) => {
  t.type(pop3.createPop3Server, 'function');
  t.type(pop3.Pop3Server, 'function');
  t.type(pop3.toPop3Reply, 'function');
  t.equal(pop3.DEFAULT_POP3_LIMITS.maxLineLength, 255);
});
