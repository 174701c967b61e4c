// Prometheus text exposition (format 0.0.4) for the driver: a tiny registry (counters, gauges, histograms, and
// collectors read at scrape time, e.g. the stage pipeline's own metrics object) and a node:http server at /metrics.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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

/** What the stage pipeline (E1) exposes; every field optional so the in-process engine can report a subset. */
export interface PipelineMetricsSource {
  /** per stage: busy time / wall time since start (0..1) */
  stageBusyFraction?: () => number[];
  skipBytes?: () => number;
  activationBytes?: () => number;
  /** micro-batches waiting in the scheduler */
  queueDepth?: () => number;
}

/** The driver's metric set. */
export class DriverMetrics {
  readonly registry = new Registry();
  readonly steps: Counter;
  readonly stepsPerSecond: Gauge;
  readonly jobs: Counter;
  readonly jobQueueDepth: Gauge;
  readonly jobsInFlight: Gauge;
  readonly jobLatency: Histogram;
  readonly phaseSeconds: Counter;
  private pipeline: PipelineMetricsSource = {};

  constructor() {
    const r = this.registry;
    this.steps = r.counter('uvit_sampler_steps_total', 'Sampler steps completed (all jobs).');
    this.stepsPerSecond = r.gauge('uvit_steps_per_second', 'Sampler steps per second of the most recent job.');
    this.jobs = r.counter('uvit_jobs_total', 'Jobs finished, by status.');
    this.jobQueueDepth = r.gauge('uvit_job_queue_depth', 'Jobs leased or accepted by this group and not yet started.');
    this.jobsInFlight = r.gauge('uvit_jobs_in_flight', 'Jobs being generated now.');
    this.jobLatency = r.histogram('uvit_job_latency_seconds', 'Job latency from start to MP4, seconds.', [
      1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300,
    ]);
    this.phaseSeconds = r.counter('uvit_phase_seconds_total', 'Time spent per driver phase, seconds.');
    r.collector('uvit_stage_busy_fraction', 'Fraction of wall time each stage spent computing.', 'gauge', () =>
      this.pipeline.stageBusyFraction?.().map((v, i) => ({ name: '', labels: { stage: String(i) }, value: v })),
    );
    r.collector('uvit_scheduler_queue_depth', 'Micro-batches waiting in the stage scheduler.', 'gauge', () =>
      this.pipeline.queueDepth?.(),
    );
    r.collector('uvit_skip_bytes_total', 'Bytes of long-skip tensors sent between stages.', 'counter', () =>
      this.pipeline.skipBytes?.(),
    );
    r.collector('uvit_activation_bytes_total', 'Bytes of stream activations sent between stages.', 'counter', () =>
      this.pipeline.activationBytes?.(),
    );
  }

  attachPipeline(src: PipelineMetricsSource): void {
    this.pipeline = src;
  }

  render(): string {
    return this.registry.render();
  }
}

/** Serve `render()` at GET /metrics. Resolves once listening; `port: 0` picks a free port. */
export async function serveMetrics(
  render: () => string,
  opts: { port: number; host?: string },
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      let body: string;
      try {
        body = render();
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics: ${(e as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } else if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
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
