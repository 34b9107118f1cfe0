import t from 'tap';
import { rfc5322Date, traceHeaders, type TraceInfo } from '../../src/smtp/received.js';

const date = new Date(Date.UTC(2025, 6, 1, 9, 5, 3));
const base: TraceInfo = {
  mailFrom: 'sender@remote.example',
  helo: 'client.example',
  clientHostname: 'host.remote.example',
  remoteAddress: '192.0.2.1',
  hostname: 'mx.example.org',
  protocol: 'ESMTPS',
  tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
  queueId: 'ABC123',
  date,
};

t.test('RFC 5322 dates in UTC', async (t) => {
  t.equal(rfc5322Date(date), 'Tue, 1 Jul 2025 09:05:03 +0000');
  t.equal(rfc5322Date(new Date(Date.UTC(1999, 11, 31, 23, 59, 59))), 'Fri, 31 Dec 1999 23:59:59 +0000');
});

t.test('Return-Path and a Postfix-style Received', async (t) => {
  t.equal(
    traceHeaders(base, 'alice@example.org'),
    'Return-Path: <sender@remote.example>\r\n' +
      'Received: from client.example (host.remote.example [192.0.2.1])\r\n' +
      '\tby mx.example.org with ESMTPS (TLSv1.3 TLS_AES_256_GCM_SHA384)\r\n' +
      '\tid ABC123 for <alice@example.org>; Tue, 1 Jul 2025 09:05:03 +0000\r\n',
  );
  t.equal(
    traceHeaders({ ...base, mailFrom: '', clientHostname: '[192.0.2.1]', tls: undefined, protocol: 'ESMTP' }, 'bob@example.org'),
    'Return-Path: <>\r\n' +
      'Received: from client.example ([192.0.2.1])\r\n' +
      '\tby mx.example.org with ESMTP\r\n' +
      '\tid ABC123 for <bob@example.org>; Tue, 1 Jul 2025 09:05:03 +0000\r\n',
    'no reverse name: the literal alone',
  );
});

t.test('local delivery has no from clause; no recipient, no for clause', async (t) => {
  t.equal(
    traceHeaders({ mailFrom: 'root@host', hostname: 'host', protocol: 'local', queueId: 'Q1', date }, undefined),
    'Return-Path: <root@host>\r\nReceived: by host with local\r\n\tid Q1; Tue, 1 Jul 2025 09:05:03 +0000\r\n',
  );
});

t.test('control characters never reach a header', async (t) => {
  const out = traceHeaders({ ...base, helo: 'evil\r\nX-Injected: 1', mailFrom: 'a\nb@c' }, 'x\r\ny@example.org');
  t.notMatch(out, /X-Injected: 1\r\n/);
  t.equal(out.split('\r\n').length, 5, 'still four lines and the final CRLF');
  t.match(out, /from evilX-Injected: 1 /);
});
