import t from 'tap';
import { formatAddress, LISTENER_NAMES } from '../../src/config/config.js';

t.test('formatAddress shows hosts as people write them', async (t) => {
  t.equal(formatAddress({ kind: 'tcp', host: '127.0.0.1', port: 1110 }), '127.0.0.1:1110');
  t.equal(formatAddress({ kind: 'tcp', host: '::1', port: 1110 }), '[::1]:1110');
  t.equal(formatAddress({ kind: 'tcp', host: undefined, port: 25 }), '*:25');
  t.equal(formatAddress({ kind: 'unix', path: '/run/lmtp.sock' }), '/run/lmtp.sock');
});

t.test('the listener names are the contract ones, in order', async (t) => {
  t.same(LISTENER_NAMES, ['pop3', 'pop3s', 'smtp', 'submission', 'smtps', 'lmtp', 'http']);
});
