import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { Gauge, Registry } from 'prom-client';
import { DriverMetrics, serveMetrics } from '../../gpu-backend/metrics/driverMetrics.ts';
import { parsePrometheusText } from '../../gpu-backend/metrics/prometheus.ts';
import { jsonLogger, withLogIds } from '../../gpu-backend/metrics/log.ts';

describe('driver metrics (prom-client, Prometheus text)', () => {
  it('renders the driver metric names, the pipeline figures read at scrape time and the process metrics', async () => {
    const m = new DriverMetrics();
    m.steps.inc(12);
    m.stepsPerSecond.set(1.5);
    m.jobs.inc({ status: 'completed' });
    m.jobs.inc({ status: 'failed' });
    m.jobQueueDepth.set(3);
    m.jobLatency.observe(4);
    m.jobLatency.observe(30);
    m.phaseSeconds.inc({ phase: 'sample' }, 2.5);
    let skip = 1024;
    m.attachPipeline({ stageBusyFraction: () => [0.75, 0.5], skipBytes: () => skip, activationBytes: () => 4096, queueDepth: () => 2 });
    const p = parsePrometheusText(await m.render());
    const val = (name: string, labels: Record<string, string> = {}) =>
      p.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))?.value;
    expect(p.get('uvit_sampler_steps_total')?.type).toBe('counter');
    expect(val('uvit_sampler_steps_total')).toBe(12);
    expect(val('uvit_steps_per_second')).toBe(1.5);
    expect(val('uvit_jobs_total', { status: 'failed' })).toBe(1);
    expect(val('uvit_job_queue_depth')).toBe(3);
    expect(val('uvit_stage_busy_fraction', { stage: '0' })).toBe(0.75);
    expect(val('uvit_stage_busy_fraction', { stage: '1' })).toBe(0.5);
    expect(val('uvit_skip_bytes_total')).toBe(1024);
    expect(val('uvit_activation_bytes_total')).toBe(4096);
    expect(val('uvit_scheduler_queue_depth')).toBe(2);
    expect(val('uvit_phase_seconds_total', { phase: 'sample' })).toBe(2.5);
    const h = p.get('uvit_job_latency_seconds')!;
    expect(h.type).toBe('histogram');
    const bucket = (le: string) => h.samples.find((s) => s.name === 'uvit_job_latency_seconds_bucket' && s.labels?.le === le)?.value;
    expect(bucket('5')).toBe(1);
    expect(bucket('30')).toBe(2);
    expect(bucket('+Inf')).toBe(2);
    expect(h.samples.find((s) => s.name === 'uvit_job_latency_seconds_sum')?.value).toBe(34);
    expect(h.samples.find((s) => s.name === 'uvit_job_latency_seconds_count')?.value).toBe(2);
    // the Node process metrics beside the driver's own
    expect(val('process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(p.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(p.get('nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    // a pipeline counter is re-read at every scrape, never accumulated
    skip = 2048;
    expect(parsePrometheusText(await m.render()).get('uvit_skip_bytes_total')?.samples[0].value).toBe(2048);
    for (const [name, f] of p) {
      expect(f.type, name).toMatch(/^(counter|gauge|histogram|summary)$/);
      expect(f.help, name).toBeTruthy();
    }
  });

  it('the parser reads escaped label values back and rejects lines that are not samples', async () => {
    const r = new Registry();
    new Gauge({ name: 'x_gauge', help: 'a gauge', labelNames: ['prompt'], registers: [r] }).set({ prompt: 'say "hi"\\now\n' }, 1);
    const p = parsePrometheusText(await r.metrics());
    expect(p.get('x_gauge')!.samples[0].labels).toEqual({ prompt: 'say "hi"\\now\n' });
    expect(Number.isNaN(parsePrometheusText('g Nan\n').get('g')!.samples[0].value)).toBe(true); // prom-client's spelling
    expect(() => parsePrometheusText('g nope\n')).toThrow(/bad value/);
    expect(() => parsePrometheusText('garbage line here')).toThrow(/not a sample/);
  });

  it('serves /metrics over HTTP with the Prometheus content type', async () => {
    const m = new DriverMetrics();
    m.steps.inc(3);
    const s = await serveMetrics(() => m.render(), { port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${s.port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const p = parsePrometheusText(await res.text());
      expect(p.get('uvit_sampler_steps_total')!.samples[0].value).toBe(3);
      expect((await fetch(`http://127.0.0.1:${s.port}/nope`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});

describe('backend JSON logs (pino)', () => {
  it('writes one JSON object per line with the bound ids and those of the async context it runs in', async () => {
    let text = '';
    const sink = new Writable({ write(c, _e, cb) { text += c; cb(); } });
    const log = jsonLogger('uvit-serve', { group: 'g1' }, sink);
    log('idle');
    await withLogIds({ job: 'video_1', lease: 'lease_1', attempt: 2 }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      log('job started'); // after an await: the ids follow the async context
      withLogIds({ stage: 1 }, () => log('stage 1 lost'));
    });
    log('idle again');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.msg)).toEqual(['idle', 'job started', 'stage 1 lost', 'idle again']);
    expect(lines.every((l) => l.name === 'uvit-serve' && l.group === 'g1' && l.level === 30 && typeof l.time === 'number' && l.pid === process.pid)).toBe(true);
    expect([lines[0].job, lines[3].job]).toEqual([undefined, undefined]);
    expect(lines[1]).toMatchObject({ job: 'video_1', lease: 'lease_1', attempt: 2 });
    expect(lines[2]).toMatchObject({ job: 'video_1', lease: 'lease_1', stage: 1 });
  });
});
