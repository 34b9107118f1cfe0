import t from 'tap';
import { LocalConnectionGate } from '../../src/protocol/connection-gate.js';

t.test('per-address and global limits; releases free places; unknown releases change nothing', async (t) => {
  const gate = new LocalConnectionGate({ maxConnections: 3, maxConnectionsPerIp: 2 });
  t.equal(gate.admit('a'), undefined);
  t.equal(gate.admit('a'), undefined);
  t.equal(gate.admit('a'), 'per-ip-limit', 'the third from one address');
  t.equal(gate.admit('b'), 'global-limit', 'the fourth overall (refused ones count until they close)');
  gate.release('a');
  gate.release('b');
  t.equal(gate.open, 2);
  gate.release('nobody');
  t.equal(gate.open, 2, 'an address never admitted frees nothing');
  t.equal(gate.admit('b'), undefined);
  const open = new LocalConnectionGate({ maxConnections: 0, maxConnectionsPerIp: 0 });
  for (let i = 0; i < 100; i++) t.equal(open.admit('a'), undefined);
});
