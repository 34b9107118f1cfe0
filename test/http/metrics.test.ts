/** The metrics registry's text format (Prometheus exposition format 0.0.4), series by series. */
import t from 'tap';
import { MetricsRegistry, escapeLabelValue, formatNumber } from '../../src/http/metrics.js';
import { ServerMetrics } from '../../src/http/server-metrics.js';

t.test('counters, gauges and histograms render as 0.0.4 text', async (t) => {
  const registry = new MetricsRegistry();
  const plain = registry.counter({ name: 'x_events_total', help: 'Events.' });
  const byProto = registry.counter({ name: 'x_commands_total', help: 'Commands by "proto"\nand verb \\.', labelNames: ['proto', 'command'] });
  const open = registry.gauge({ name: 'x_open', help: 'Open.', labelNames: ['proto'] });
  const latency = registry.histogram({ name: 'x_seconds', help: 'Latency.', buckets: [0.01, 0.1, 1] });
  let sampled = 7;
  registry.collectedGauge({ name: 'x_sampled', help: 'Sampled.', labelNames: ['proto'], collect: () => [[{ proto: 'pop3' }, sampled]] });

  plain.inc();
  plain.inc({}, 2);
  byProto.inc({ proto: 'pop3', command: 'RETR' });
  byProto.inc({ command: 'RETR', proto: 'pop3' }, 4);
  byProto.inc({ proto: 'smtp', command: 'a"b\\c\nd' });
  open.set({ proto: 'pop3' }, 3);
  open.inc({ proto: 'pop3' }, -1);
  for (const value of [0.005, 0.01, 0.05, 0.5, 3]) latency.observe({}, value);

  t.equal(
    registry.render(),
    [
      '# HELP x_events_total Events.',
      '# TYPE x_events_total counter',
      'x_events_total 3',
      '# HELP x_commands_total Commands by "proto"\\nand verb \\\\.',
      '# TYPE x_commands_total counter',
      'x_commands_total{proto="pop3",command="RETR"} 5',
      'x_commands_total{proto="smtp",command="a\\"b\\\\c\\nd"} 1',
      '# HELP x_open Open.',
      '# TYPE x_open gauge',
      'x_open{proto="pop3"} 2',
      '# HELP x_seconds Latency.',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{le="0.01"} 2',
      'x_seconds_bucket{le="0.1"} 3',
      'x_seconds_bucket{le="1"} 4',
      'x_seconds_bucket{le="+Inf"} 5',
      'x_seconds_sum 3.565',
      'x_seconds_count 5',
      '# HELP x_sampled Sampled.',
      '# TYPE x_sampled gauge',
      'x_sampled{proto="pop3"} 7',
      '',
    ].join('\n'),
  );
  sampled = 9;
  t.match(registry.render(), /^x_sampled\{proto="pop3"\} 9$/m, 'collected values are read at each render');
});

t.test('misuse is a programming error, found at once', async (t) => {
  const registry = new MetricsRegistry();
  const counter = registry.counter({ name: 'y_total', help: 'Y.', labelNames: ['proto'] });
  t.throws(() => counter.inc({}), /takes labels \{proto\}/);
  t.throws(() => counter.inc({ proto: 'pop3', extra: 'x' }), /takes labels/);
  t.throws(() => counter.inc({ proto: 'pop3' }, -1), /cannot go down/);
  t.throws(() => registry.counter({ name: 'y_total', help: 'again' }), /registered twice/);
  t.throws(() => registry.counter({ name: 'bad-name', help: 'x' }), /invalid metric name/);
  t.throws(() => registry.counter({ name: 'z', help: 'x', labelNames: ['__reserved'] }), /invalid label name/);
  t.throws(() => registry.histogram({ name: 'h', help: 'x', labelNames: ['le'] }), /bucket label/);
  t.throws(() => registry.histogram({ name: 'h2', help: 'x', buckets: [1, 0.5] }), /increasing/);
});

t.test('number and label spellings', async (t) => {
  t.equal(formatNumber(Number.POSITIVE_INFINITY), '+Inf');
  t.equal(formatNumber(Number.NEGATIVE_INFINITY), '-Inf');
  t.equal(formatNumber(Number.NaN), 'NaN');
  t.equal(formatNumber(0.25), '0.25');
  t.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
});

t.test('ServerMetrics: every family declared once, series shown at 0 before traffic', async (t) => {
  const metrics = new ServerMetrics();
  let open = 2;
  const stop = metrics.addConnectionSource('pop3', () => open);
  metrics.addFsyncSource(() => 11);
  let text = metrics.render();
  for (const family of [
    'maildird_connections_open gauge',
    'maildird_connections_closed_total counter',
    'maildird_commands_total counter',
    'maildird_logins_total counter',
    'maildird_auth_failures_total counter',
    'maildird_messages_delivered_total counter',
    'maildird_messages_retrieved_total counter',
    'maildird_messages_deleted_total counter',
    'maildird_received_bytes_total counter',
    'maildird_sent_bytes_total counter',
    'maildird_delivery_duration_seconds histogram',
    'maildird_store_fsyncs_total counter',
    'maildird_lock_contention_total counter',
    'maildird_reloads_total counter',
    'maildird_http_requests_total counter',
  ]) {
    t.match(text, new RegExp(`^# TYPE ${family}$`, 'm'), family);
  }
  t.match(text, /^maildird_connections_open\{proto="pop3"\} 2$/m);
  t.match(text, /^maildird_auth_failures_total\{proto="pop3"\} 0$/m);
  t.match(text, /^maildird_store_fsyncs_total 11$/m);
  t.match(text, /^maildird_reloads_total\{what="tls",result="refused"\} 0$/m);
  open = 5;
  t.match(metrics.render(), /^maildird_connections_open\{proto="pop3"\} 5$/m);
  stop();
  text = metrics.render();
  t.match(text, /^maildird_connections_open\{proto="pop3"\} 0$/m, 'a closed server counts nothing');
});
