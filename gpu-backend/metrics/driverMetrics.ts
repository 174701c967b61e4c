// The driver's Prometheus metrics (registry in prometheus.ts): its metric set, the stage pipeline's figures read at
// scrape time, and a node:http server for GET /metrics (and /healthz).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Counter, type Gauge, type Histogram, Registry } from './prometheus.ts';

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
