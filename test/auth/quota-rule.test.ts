import t from 'tap';
import { formatDovecotSize, parseDovecotSize, parseQuotaRule } from '../../src/auth/quota-rule.js';

t.test('Dovecot sizes: suffixes in any case, storage counts KiB without one', async (t) => {
  t.equal(parseDovecotSize('100M'), 100 * 1024 * 1024);
  t.equal(parseDovecotSize('100m'), 100 * 1024 * 1024);
  t.equal(parseDovecotSize('1G'), 1024 ** 3);
  t.equal(parseDovecotSize('2t'), 2 * 1024 ** 4);
  t.equal(parseDovecotSize('512k'), 512 * 1024);
  t.equal(parseDovecotSize('7B'), 7);
  t.equal(parseDovecotSize('10', 1024), 10240, 'unit applies without a suffix');
  t.equal(parseDovecotSize('0'), 0);
  for (const bad of ['', 'M', '1.5G', '-1', '10 M', '10MB', '99999999999999999T']) {
    t.equal(parseDovecotSize(bad), undefined, JSON.stringify(bad));
  }
});

t.test('formats the shortest exact spelling', async (t) => {
  t.equal(formatDovecotSize(100 * 1024 * 1024), '100M');
  t.equal(formatDovecotSize(1536 * 1024), '1536k');
  t.equal(formatDovecotSize(1024 ** 3), '1G');
  t.equal(formatDovecotSize(7), '7B');
  t.equal(formatDovecotSize(0), '0');
  for (const n of [1, 1000, 1024, 5 * 1024 ** 4, 123456789]) t.equal(parseDovecotSize(formatDovecotSize(n)), n, `round trip ${n}`);
});

t.test('rules for every mailbox', async (t) => {
  t.same(parseQuotaRule('*:storage=100M'), { ok: true, limits: { bytes: 104857600 }, ignored: [] });
  t.same(parseQuotaRule('*:storage=1000'), { ok: true, limits: { bytes: 1024000 }, ignored: [] }, 'KiB by default');
  t.same(parseQuotaRule('*:bytes=1000'), { ok: true, limits: { bytes: 1000 }, ignored: [] });
  t.same(parseQuotaRule('*:messages=500'), { ok: true, limits: { messages: 500 }, ignored: [] });
  t.same(parseQuotaRule('*:storage=1G:messages=10'), { ok: true, limits: { bytes: 1024 ** 3, messages: 10 }, ignored: [] });
  t.same(parseQuotaRule('*:storage=0'), { ok: true, limits: { bytes: 0 }, ignored: [] }, '0 is unlimited');
});

t.test('ignored and refused rules', async (t) => {
  t.match(parseQuotaRule('Trash:storage=+100M'), { ok: true, limits: {}, ignored: [/mailbox "Trash"/] });
  t.match(parseQuotaRule('*:storage=+10M'), { ok: true, limits: {}, ignored: [/relative/] });
  t.match(parseQuotaRule('*:storage=50%'), { ok: true, ignored: [/relative/] });
  t.match(parseQuotaRule('*:ignore'), { ok: true, ignored: [/ignore/] });
  t.match(parseQuotaRule('storage=1G'), { ok: false, reason: /no "mailbox:"/ });
  t.match(parseQuotaRule('*:storage=lots'), { ok: false, reason: /bad quota value/ });
  t.match(parseQuotaRule('*:widgets=3'), { ok: false, reason: /unknown quota limit/ });
  t.match(parseQuotaRule(''), { ok: false });
});
