// The driver's Prometheus metrics (prom-client): its metric set, the stage pipeline's figures read at scrape time,
// the Node process metrics (CPU, memory, event-loop lag, GC, handles) and a node:http server for GET /metrics
// (and /healthz).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the stage pipeline exposes; every field optional so the in-process engine can report a subset. */
export interface PipelineMetricsSource {
  /** per stage: busy time / wall time since start (0..1) */
  stageBusyFraction?: () => number[];
  skipBytes?: () => number;
  activationBytes?: () => number;
  /** micro-batches waiting in the scheduler */
  queueDepth?: () => number;
}

/** The driver's metric set, in a registry of its own (several drivers may share a process in tests). */
export class DriverMetrics {
  readonly registry = new Registry();
  readonly steps: Counter;
  readonly stepsPerSecond: Gauge;
  readonly jobs: Counter<'status'>;
  readonly jobQueueDepth: Gauge;
  readonly jobsInFlight: Gauge;
  readonly jobLatency: Histogram;
  readonly phaseSeconds: Counter<'phase'>;
  private pipeline: PipelineMetricsSource = {};

  constructor() {
    const registers = [this.registry];
    const pipeline = () => this.pipeline;
    this.steps = new Counter({ name: 'uvit_sampler_steps_total', help: 'Sampler steps completed (all jobs).', registers });
    this.stepsPerSecond = new Gauge({ name: 'uvit_steps_per_second', help: 'Sampler steps per second of the most recent job.', registers });
    this.jobs = new Counter({ name: 'uvit_jobs_total', help: 'Jobs finished, by status.', labelNames: ['status'], registers });
    this.jobQueueDepth = new Gauge({ name: 'uvit_job_queue_depth', help: 'Jobs leased or accepted by this group and not yet started.', registers });
    this.jobsInFlight = new Gauge({ name: 'uvit_jobs_in_flight', help: 'Jobs being generated now.', registers });
    this.jobLatency = new Histogram({
      name: 'uvit_job_latency_seconds', help: 'Job latency from start to MP4, seconds.', registers,
      buckets: [1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300],
    });
    this.phaseSeconds = new Counter({ name: 'uvit_phase_seconds_total', help: 'Time spent per driver phase, seconds.', labelNames: ['phase'], registers });
    // Read from the pipeline at scrape time: reset, then set to the current figure (a counter cannot be set).
    new Gauge({
      name: 'uvit_stage_busy_fraction', help: 'Fraction of wall time each stage spent computing.', labelNames: ['stage'], registers,
      collect() {
        this.reset();
        pipeline().stageBusyFraction?.().forEach((v, i) => this.set({ stage: String(i) }, v));
      },
    });
    new Gauge({
      name: 'uvit_scheduler_queue_depth', help: 'Micro-batches waiting in the stage scheduler.', registers,
      collect() { this.set(pipeline().queueDepth?.() ?? 0); },
    });
    const total = (name: string, help: string, read: (p: PipelineMetricsSource) => number | undefined) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(pipeline()) ?? 0); } });
    total('uvit_skip_bytes_total', 'Bytes of long-skip tensors sent between stages.', (p) => p.skipBytes?.());
    total('uvit_activation_bytes_total', 'Bytes of stream activations sent between stages.', (p) => p.activationBytes?.());
    collectDefaultMetrics({ register: this.registry });
  }

  attachPipeline(src: PipelineMetricsSource): void {
    this.pipeline = src;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Serve `render()` at GET /metrics. Resolves once listening; `port: 0` picks a free port. */
export async function serveMetrics(
  render: () => Promise<string> | string,
  opts: { port: number; host?: string },
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      let body: string;
      try {
        body = await render();
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
