import t from 'tap';
import { mergeExpositions } from '../../src/http/metrics-merge.js';
import { MetricsRegistry } from '../../src/http/metrics.js';

/** Two registries with the same metrics, as two worker processes have them. */
function registry(): { r: MetricsRegistry; logins: ReturnType<MetricsRegistry['counter']>; open: ReturnType<MetricsRegistry['gauge']>; took: ReturnType<MetricsRegistry['histogram']> } {
  const r = new MetricsRegistry();
  const logins = r.counter({ name: 'x_logins_total', help: 'Logins.', labelNames: ['proto'] });
  const open = r.gauge({ name: 'x_open', help: 'Open "now".', labelNames: ['proto'] });
  const took = r.histogram({ name: 'x_seconds', help: 'Time.', labelNames: [], buckets: [0.1, 1] });
  return { r, logins, open, took };
}

t.test('every series is summed over the pages, whatever the registry holds', async (t) => {
  const a = registry();
  const b = registry();
  a.logins.inc({ proto: 'pop3' }, 2);
  b.logins.inc({ proto: 'pop3' }, 3);
  b.logins.inc({ proto: 'smtp' });
  a.open.set({ proto: 'a b"c' }, 1);
  b.open.set({ proto: 'a b"c' }, 4);
  a.took.observe({}, 0.05);
  b.took.observe({}, 0.5);
  b.took.observe({}, 5);
  const only = new MetricsRegistry();
  only.counter({ name: 'x_only_here_total', help: 'One process has it.' }).inc({}, 7);
  const merged = mergeExpositions([a.r.render(), b.r.render(), only.render()]);
  t.equal(
    merged,
    [
      '# HELP x_logins_total Logins.',
      '# TYPE x_logins_total counter',
      'x_logins_total{proto="pop3"} 5',
      'x_logins_total{proto="smtp"} 1',
      '# HELP x_open Open "now".',
      '# TYPE x_open gauge',
      'x_open{proto="a b\\"c"} 5',
      '# HELP x_seconds Time.',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{le="0.1"} 1',
      'x_seconds_bucket{le="1"} 2',
      'x_seconds_bucket{le="+Inf"} 3',
      'x_seconds_sum 5.55',
      'x_seconds_count 3',
      '# HELP x_only_here_total One process has it.',
      '# TYPE x_only_here_total counter',
      'x_only_here_total 7',
      '',
    ].join('\n'),
  );
  t.equal(mergeExpositions([a.r.render()]), a.r.render(), 'one page is itself');
  t.equal(mergeExpositions(['', '']), '', 'nothing is nothing');
});
