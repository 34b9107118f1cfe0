import t from 'tap';
import { isLoopbackAddress, normaliseAddress } from '../../src/protocol/address.ts';

t.test('IPv4-mapped addresses are shown as IPv4', async (t) => {
  t.equal(normaliseAddress('::ffff:192.0.2.1'), '192.0.2.1');
  t.equal(normaliseAddress('::FFFF:127.0.0.1'), '127.0.0.1');
  t.equal(normaliseAddress('2001:DB8::1'), '2001:db8::1');
  t.equal(normaliseAddress(undefined), '');
});

t.test('loopback is 127/8 and ::1 only', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopbackAddress(a), a);
  for (const a of ['10.0.0.1', '192.168.1.1', '::', '::ffff:10.0.0.1', '1127.0.0.1', 'localhost', undefined]) {
    t.notOk(isLoopbackAddress(a), String(a));
  }
});
