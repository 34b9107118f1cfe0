import t from 'tap';
import { decodeStrictBase64, decodeUtf8, encodeBase64, readClientPayload } from '../../../src/auth/sasl/exchange.js';

t.test('strict base64 (RFC 4648 section 4)', async (t) => {
  t.same(decodeStrictBase64('dGVzdA=='), Buffer.from('test'));
  t.same(decodeStrictBase64(''), Buffer.alloc(0), 'empty is the empty string');
  t.same(decodeStrictBase64('AHRpbQB0YW5zdGFhZnRhbnN0YWFm'), Buffer.from('\0tim\0tanstaaftanstaaf'));
  for (const bad of ['dGVzdA', 'dGVzdA=', 'dGVz dA==', 'dGVzdA==\r', ' dGVzdA==', 'dGVzdA==dGVz', 'dGV-dA==', 'dGV_dA==', 'QR==', '=', '*', 'dGVzdA===']) {
    t.equal(decodeStrictBase64(bad), undefined, JSON.stringify(bad));
  }
  t.equal(encodeBase64('Username:'), 'VXNlcm5hbWU6');
});

t.test('client lines: cancel, empty initial response, base64', async (t) => {
  t.match(readClientPayload('*', false), { kind: 'error', step: { kind: 'error', error: 'cancelled' } });
  t.match(readClientPayload('*', true), { kind: 'error', step: { error: 'cancelled' } });
  t.same(readClientPayload('=', true), { kind: 'bytes', bytes: Buffer.alloc(0) }, '= is an empty initial response');
  t.match(readClientPayload('=', false), { kind: 'error', step: { error: 'bad-base64' } }, 'only as an initial response');
  t.same(readClientPayload('', false), { kind: 'bytes', bytes: Buffer.alloc(0) }, 'an empty line answers with nothing');
  t.match(readClientPayload('not base64!', false), { kind: 'error', step: { error: 'bad-base64' } });
});

t.test('UTF-8 or nothing', async (t) => {
  t.equal(decodeUtf8(Buffer.from('jörg')), 'jörg');
  t.equal(decodeUtf8(Buffer.from([0xff, 0xfe])), undefined);
  t.equal(decodeUtf8(Buffer.from([0xc3])), undefined, 'truncated sequence');
});
