// Prometheus text exposition (format 0.0.4): a tiny registry (counters, gauges, histograms, and collectors read at
// scrape time) and a parser of the same text (tests, and anything that scrapes a driver).

export type Labels = Record<string, string>;

export interface Sample {
  name: string;
  labels?: Labels;
  value: number;
}

export type MetricType = 'counter' | 'gauge' | 'histogram';

interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples(): Sample[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(String(labels[k]))}`)
    .join(',');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatSample(s: Sample): string {
  const ls = s.labels && Object.keys(s.labels).length
    ? `{${Object.keys(s.labels)
        .sort()
        .map((k) => `${k}="${escapeLabel(String(s.labels![k]))}"`)
        .join(',')}}`
    : '';
  return `${s.name}${ls} ${formatValue(s.value)}`;
}

export class Counter {
  private readonly values = new Map<string, { labels?: Labels; value: number }>();
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  inc(by = 1, labels?: Labels): void {
    if (by < 0 || !Number.isFinite(by)) throw new Error(`counter ${this.name}: increment must be finite and >= 0, got ${by}`);
    const k = labelKey(labels);
    const cur = this.values.get(k);
    if (cur) cur.value += by;
    else this.values.set(k, { labels, value: by });
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels))?.value ?? 0;
  }
  samples(): Sample[] {
    return [...this.values.values()].map((v) => ({ name: this.name, labels: v.labels, value: v.value }));
  }
}

export class Gauge {
  private readonly values = new Map<string, { labels?: Labels; value: number }>();
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), { labels, value });
  }
  inc(by = 1, labels?: Labels): void {
    this.set(this.get(labels) + by, labels);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels))?.value ?? 0;
  }
  samples(): Sample[] {
    return [...this.values.values()].map((v) => ({ name: this.name, labels: v.labels, value: v.value }));
  }
}

export class Histogram {
  readonly name: string;
  readonly buckets: number[];
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(name: string, buckets: number[]) {
    const sorted = [...buckets].sort((a, b) => a - b);
    if (!sorted.length || sorted.some((b, i) => i > 0 && b === sorted[i - 1])) {
      throw new Error(`histogram ${name}: buckets must be non-empty and distinct`);
    }
    this.name = name;
    this.buckets = sorted;
    this.counts = new Array(sorted.length).fill(0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
  }
  samples(): Sample[] {
    const out: Sample[] = this.buckets.map((b, i) => ({
      name: `${this.name}_bucket`,
      labels: { le: formatValue(b) },
      value: this.counts[i],
    }));
    out.push({ name: `${this.name}_bucket`, labels: { le: '+Inf' }, value: this.count });
    out.push({ name: `${this.name}_sum`, value: this.sum });
    out.push({ name: `${this.name}_count`, value: this.count });
    return out;
  }
}

export class Registry {
  private readonly families: Family[] = [];

  private add<T extends { samples(): Sample[] }>(name: string, help: string, type: MetricType, m: T): T {
    if (!NAME_RE.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not a valid Prometheus name`);
    if (this.families.some((f) => f.name === name)) throw new Error(`metric ${name} registered twice`);
    this.families.push({ name, help, type, samples: () => m.samples() });
    return m;
  }
  counter(name: string, help: string): Counter {
    return this.add(name, help, 'counter', new Counter(name));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(name, help, 'gauge', new Gauge(name));
  }
  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.add(name, help, 'histogram', new Histogram(name, buckets));
  }
  /** a family whose samples are computed at scrape time (sample names must be `name` itself) */
  collector(name: string, help: string, type: 'counter' | 'gauge', read: () => Sample[] | number | undefined): void {
    this.add(name, help, type, {
      samples: () => {
        const r = read();
        if (r === undefined) return [];
        return typeof r === 'number' ? [{ name, value: r }] : r.map((s) => ({ ...s, name }));
      },
    });
  }
  render(): string {
    const lines: string[] = [];
    for (const f of this.families) {
      lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      lines.push(`# TYPE ${f.name} ${f.type}`);
      for (const s of f.samples()) lines.push(formatSample(s));
    }
    return lines.join('\n') + '\n';
  }
}

export interface ParsedMetric {
  type?: string;
  help?: string;
  samples: Sample[];
}

/** Strict parser for the text format this module writes (used by tests and health checks). */
export function parsePrometheusText(text: string): Map<string, ParsedMetric> {
  const out = new Map<string, ParsedMetric>();
  const fam = (n: string) => {
    let f = out.get(n);
    if (!f) out.set(n, (f = { samples: [] }));
    return f;
  };
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const sp = rest.indexOf(' ');
      const name = rest.slice(0, sp);
      if (line[2] === 'H') fam(name).help = rest.slice(sp + 1);
      else fam(name).type = rest.slice(sp + 1);
      return;
    }
    if (line.startsWith('#')) return;
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`metrics line ${i + 1} is not a sample: ${JSON.stringify(line)}`);
    const labels: Labels = {};
    if (m[3]) {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < m[3].length) {
        const l = labelRe.exec(m[3]);
        if (!l) throw new Error(`metrics line ${i + 1}: bad labels ${JSON.stringify(m[3])}`);
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(v) && m[4] !== 'NaN') throw new Error(`metrics line ${i + 1}: bad value ${m[4]}`);
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    const owner = out.has(m[1]) ? m[1] : out.get(base)?.type === 'histogram' ? base : m[1];
    fam(owner).samples.push({ name: m[1], labels, value: v });
  });
  return out;
}
