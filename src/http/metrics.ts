/**
 * A small metrics registry: counters, gauges and histograms with labels,
 * rendered in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): `# HELP`
 * and `# TYPE` lines, then one `name{label="value"} number` line per series;
 * a histogram as cumulative `_bucket{le="..."}` series ending in `+Inf`,
 * then `_sum` and `_count`.
 *
 * Values that live elsewhere (open connections, the store's fsync count)
 * are read when the page is rendered, through collected metrics, so nothing
 * polls and nothing goes stale.
 */

/** Label values by label name; exactly the metric's label names. */
export type Labels = Readonly<Record<string, string>>;

/** One series of a collected metric: its labels and its current value. */
export type CollectedSample = readonly [labels: Labels, value: number];

/** The Content-Type of the 0.0.4 text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds (seconds) fit for disk-bound work: a fsync'd delivery takes about 1-10 ms on a good disk. */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface MetricOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

type MetricType = 'counter' | 'gauge' | 'histogram';

abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricType;

  constructor(options: MetricOptions) {
    if (!METRIC_NAME.test(options.name)) throw new Error(`invalid metric name ${JSON.stringify(options.name)}`);
    const labelNames = options.labelNames ?? [];
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(label)} on ${options.name}`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`repeated label name on ${options.name}`);
    this.name = options.name;
    this.help = options.help;
    this.labelNames = labelNames;
  }

  /** The series lines of this metric (without HELP and TYPE). */
  abstract lines(): string[];

  /** A stable key for a label set; throws when the labels are not exactly the metric's (a programming error). */
  protected keyOf(labels: Labels): string {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length || !this.labelNames.every((name) => typeof labels[name] === 'string')) {
      throw new Error(`${this.name} takes labels {${this.labelNames.join(', ')}}, got {${given.join(', ')}}`);
    }
    return this.labelNames.map((name) => labels[name]).join('\u0000');
  }

  protected labelsOf(key: string): Labels {
    if (this.labelNames.length === 0) return {};
    const values = key.split('\u0000');
    return Object.fromEntries(this.labelNames.map((name, i) => [name, values[i] ?? '']));
  }
}

/** A value that only goes up (RFC-free, but Prometheus' rule): `_total` names by convention. */
export class Counter extends Metric {
  readonly type = 'counter';
  readonly #values = new Map<string, number>();

  constructor(options: MetricOptions) {
    super(options);
    if (this.labelNames.length === 0) this.#values.set('', 0);
  }

  /** Add `by` (default 1, never negative) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter cannot go down (${by})`);
    const key = this.keyOf(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** Show the series of `labels` at 0 before anything happened, so rate() sees its first increase. */
  touch(labels: Labels): void {
    const key = this.keyOf(labels);
    if (!this.#values.has(key)) this.#values.set(key, 0);
  }

  value(labels: Labels = {}): number {
    return this.#values.get(this.keyOf(labels)) ?? 0;
  }

  lines(): string[] {
    return [...this.#values].map(([key, value]) => series(this.name, this.labelsOf(key), value));
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric {
  readonly type = 'gauge';
  readonly #values = new Map<string, number>();

  set(labels: Labels, value: number): void {
    this.#values.set(this.keyOf(labels), value);
  }

  inc(labels: Labels = {}, by = 1): void {
    const key = this.keyOf(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  lines(): string[] {
    return [...this.#values].map(([key, value]) => series(this.name, this.labelsOf(key), value));
  }
}

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative buckets (`le`: less than or equal). */
export class Histogram extends Metric {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(options: MetricOptions & { readonly buckets?: readonly number[] }) {
    super(options);
    if (this.labelNames.includes('le')) throw new Error(`${this.name}: "le" is the bucket label`);
    const buckets = [...(options.buckets ?? DEFAULT_SECONDS_BUCKETS)].filter((b) => b !== Number.POSITIVE_INFINITY);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] ?? b)))) {
      throw new Error(`${this.name}: buckets must be finite and increasing`);
    }
    this.buckets = buckets;
    if (this.labelNames.length === 0) this.#series.set('', this.#empty());
  }

  observe(labels: Labels, value: number): void {
    const key = this.keyOf(labels);
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = this.#empty();
      this.#series.set(key, entry);
    }
    const index = this.buckets.findIndex((bound) => value <= bound);
    if (index >= 0) entry.counts[index] = (entry.counts[index] ?? 0) + 1;
    entry.sum += value;
    entry.count += 1;
  }

  /** Observations so far for `labels`. */
  count(labels: Labels = {}): number {
    return this.#series.get(this.keyOf(labels))?.count ?? 0;
  }

  lines(): string[] {
    const out: string[] = [];
    for (const [key, entry] of this.#series) {
      const labels = this.labelsOf(key);
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += entry.counts[i] ?? 0;
        out.push(series(`${this.name}_bucket`, { ...labels, le: formatNumber(bound) }, cumulative));
      });
      out.push(series(`${this.name}_bucket`, { ...labels, le: '+Inf' }, entry.count));
      out.push(series(`${this.name}_sum`, labels, entry.sum));
      out.push(series(`${this.name}_count`, labels, entry.count));
    }
    return out;
  }

  #empty(): HistogramSeries {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
}

/** A counter or gauge whose series are read from elsewhere each time the page is rendered. */
class CollectedMetric extends Metric {
  readonly type: 'counter' | 'gauge';
  readonly #collect: () => Iterable<CollectedSample>;

  constructor(type: 'counter' | 'gauge', options: MetricOptions & { readonly collect: () => Iterable<CollectedSample> }) {
    super(options);
    this.type = type;
    this.#collect = options.collect;
  }

  lines(): string[] {
    const out: string[] = [];
    for (const [labels, value] of this.#collect()) {
      this.keyOf(labels);
      out.push(series(this.name, labels, value));
    }
    return out;
  }
}

export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric>();

  counter(options: MetricOptions): Counter {
    return this.#add(new Counter(options));
  }

  gauge(options: MetricOptions): Gauge {
    return this.#add(new Gauge(options));
  }

  histogram(options: MetricOptions & { readonly buckets?: readonly number[] }): Histogram {
    return this.#add(new Histogram(options));
  }

  /** A counter owned elsewhere (e.g. MailStore.stats().fsyncs), read at each render. */
  collectedCounter(options: MetricOptions & { readonly collect: () => Iterable<CollectedSample> }): void {
    this.#add(new CollectedMetric('counter', options));
  }

  /** A gauge owned elsewhere (e.g. open connections), read at each render. */
  collectedGauge(options: MetricOptions & { readonly collect: () => Iterable<CollectedSample> }): void {
    this.#add(new CollectedMetric('gauge', options));
  }

  /** Every metric in the 0.0.4 text format, in registration order, ending with a line feed. */
  render(): string {
    const out: string[] = [];
    for (const metric of this.#metrics.values()) {
      out.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`, ...metric.lines());
    }
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }

  #add<T extends Metric>(metric: T): T {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

function series(name: string, labels: Labels, value: number): string {
  const entries = Object.entries(labels);
  const labelText = entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
  return `${name}${labelText} ${formatNumber(value)}`;
}

/** Go's ParseFloat reads what JavaScript prints, except the infinities and NaN, which have their own spellings. */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
