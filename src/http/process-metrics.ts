/**
 * Process health on `/metrics` (issue 6: the load figures come from here):
 * resident memory, heap in use, and event-loop lag measured by Node's
 * `monitorEventLoopDelay` (perf_hooks: a libuv timer every `resolutionMs`
 * that records how late it fired). The lag quantiles cover the time since
 * the previous scrape (the histogram is reset after each, as prom-client
 * does), so one scraper sees the lag of each interval.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { MetricsRegistry } from './metrics.js';

export interface ProcessMetrics {
  /** Stop the event-loop monitor (at shutdown). */
  stop(): void;
}

export interface ProcessMetricsOptions {
  /** libuv's thread pool size (threadPoolSize() of the UV_THREADPOOL_SIZE the process started with). */
  readonly threadPoolSize: number;
  readonly resolutionMs?: number;
}

/** Register the process metrics on `registry` and start the event-loop monitor. */
export function registerProcessMetrics(registry: MetricsRegistry, options: ProcessMetricsOptions): ProcessMetrics {
  const resolutionMs = options.resolutionMs ?? 10;
  const lag: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  lag.enable();
  registry.collectedGauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident set size of the process, in bytes.',
    collect: () => [[{}, process.memoryUsage.rss()]],
  });
  registry.collectedGauge({
    name: 'nodejs_heap_used_bytes',
    help: 'V8 heap in use, in bytes.',
    collect: () => [[{}, process.memoryUsage().heapUsed]],
  });
  registry.collectedGauge({
    name: 'nodejs_uv_threadpool_size',
    help: "Threads in libuv's pool, where file opens and fsyncs run (UV_THREADPOOL_SIZE; bin/maildird sets 8 unless given).",
    collect: () => [[{}, options.threadPoolSize]],
  });
  registry.collectedGauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: `Event-loop delay since the previous scrape (monitorEventLoopDelay, ${resolutionMs} ms resolution), by quantile (max: the largest).`,
    labelNames: ['quantile'],
    collect: () => {
      // No sample yet (a scrape right after the previous one): report 0, not the histogram's NaN/huge defaults.
      const seen = lag.count > 0;
      const at = (q: number) => (seen ? lag.percentile(q) / 1e9 : 0);
      const samples: [Record<string, string>, number][] = [
        [{ quantile: '0.5' }, at(50)],
        [{ quantile: '0.9' }, at(90)],
        [{ quantile: '0.99' }, at(99)],
        [{ quantile: 'max' }, seen ? lag.max / 1e9 : 0],
      ];
      lag.reset();
      return samples;
    },
  });
  return { stop: () => lag.disable() };
}

/** The pool size libuv derives from UV_THREADPOOL_SIZE (uv__threadpool_init: atoi, at least 1, at most 1024; unset: 4). */
export function threadPoolSize(value: string | undefined): number {
  if (value === undefined) return 4;
  const n = Number.parseInt(value, 10);
  return Math.min(1024, Math.max(1, Number.isNaN(n) ? 0 : n));
}
