import { describe, expect, it } from 'vitest';
import { DriverMetrics, serveMetrics } from '../../gpu-backend/metrics/driverMetrics.ts';
import { Registry, parsePrometheusText } from '../../gpu-backend/metrics/prometheus.ts';

describe('driver metrics (Prometheus text)', () => {
  it('renders counters, gauges, histograms and collectors that the parser reads back', () => {
    const m = new DriverMetrics();
    m.steps.inc(12);
    m.stepsPerSecond.set(1.5);
    m.jobs.inc(1, { status: 'completed' });
    m.jobs.inc(1, { status: 'failed' });
    m.jobQueueDepth.set(3);
    m.jobLatency.observe(4);
    m.jobLatency.observe(30);
    m.phaseSeconds.inc(2.5, { phase: 'sample' });
    m.attachPipeline({ stageBusyFraction: () => [0.75, 0.5], skipBytes: () => 1024, activationBytes: () => 4096, queueDepth: () => 2 });
    const text = m.render();
    const p = parsePrometheusText(text);
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
    // every sample line is well-formed and every family has HELP and TYPE
    for (const [name, f] of p) {
      expect(f.type, name).toMatch(/^(counter|gauge|histogram)$/);
      expect(f.help, name).toBeTruthy();
    }
  });

  it('escapes label values and rejects bad names and negative counter increments', () => {
    const r = new Registry();
    const g = r.gauge('x_gauge', 'a gauge');
    g.set(1, { prompt: 'say "hi"\\now\n' });
    const p = parsePrometheusText(r.render());
    expect(p.get('x_gauge')!.samples[0].labels).toEqual({ prompt: 'say "hi"\\now\n' });
    expect(() => r.counter('bad-name', 'x')).toThrow(/not a valid Prometheus name/);
    expect(() => r.counter('x_gauge', 'x')).toThrow(/registered twice/);
    expect(() => r.counter('c_total', 'c').inc(-1)).toThrow(/>= 0/);
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
