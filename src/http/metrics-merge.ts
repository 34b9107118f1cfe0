/**
 * Sum of several /metrics pages (Prometheus text format 0.0.4), for
 * `maildird serve` with several worker processes: each process renders its
 * own registry, and the primary shows one page whose every series is the
 * sum of that series over the processes.
 *
 * Generic over what the registries hold: it reads the text, not a list of
 * metric names, so a metric added to the registry is summed with no change
 * here. Counters, gauges of things that add up (open connections) and
 * histograms (cumulative buckets, _sum, _count) all sum correctly. A family
 * keeps the HELP and TYPE of the first page that has it; families and the
 * series within them keep the order in which they first appear.
 */
import { formatNumber } from './metrics.js';

interface Family {
  readonly comments: string[];
  /** Series text (name and labels) -> summed value. */
  readonly series: Map<string, number>;
}

export function mergeExpositions(pages: readonly string[]): string {
  const families = new Map<string, Family>();
  const familyOf = (name: string): Family => {
    let family = families.get(name);
    if (family === undefined) {
      family = { comments: [], series: new Map() };
      families.set(name, family);
    }
    return family;
  };
  for (const page of pages) {
    let current: Family | undefined;
    for (const line of page.split('\n')) {
      if (line === '') continue;
      const comment = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (comment !== null) {
        current = familyOf(comment[2] as string);
        // HELP and TYPE of the first page that has the family.
        if (!current.comments.some((c) => c.startsWith(`# ${comment[1] as string} `))) current.comments.push(line);
        continue;
      }
      if (line.startsWith('#')) continue;
      // `name{labels} value`: label values may hold spaces, the value never does.
      const cut = line.lastIndexOf(' ');
      if (cut <= 0) continue;
      const key = line.slice(0, cut);
      const value = Number(line.slice(cut + 1).replace(/^\+Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity'));
      const family = current ?? familyOf(key.replace(/[{].*$/, ''));
      family.series.set(key, (family.series.get(key) ?? 0) + value);
    }
  }
  const out: string[] = [];
  for (const family of families.values()) {
    out.push(...family.comments);
    for (const [key, value] of family.series) out.push(`${key} ${formatNumber(value)}`);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
