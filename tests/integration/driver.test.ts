// Driver end to end on a TINY text-to-video config with the in-process engine: prompt → MP4, deterministic bytes
// for the same seed, progress events, shorter clips, cancellation.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver, type BuiltDriver } from '../../gpu-backend/demo/demo.ts';
import type { ProgressEvent } from '../../gpu-backend/driver/driver.ts';
import { probeMp4 } from '../../gpu-backend/driver/ffmpeg.ts';
import { DriverMetrics } from '../../gpu-backend/metrics/driverMetrics.ts';
import { parsePrometheusText } from '../../gpu-backend/metrics/prometheus.ts';
import { writeTinyGroup } from './serve-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'e2-driver-'));
let built: BuiltDriver;
const metrics = new DriverMetrics();
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

beforeAll(async () => {
  built = await createDriver(writeTinyGroup(dir), { metrics });
});
afterAll(async () => {
  await built?.close();
  rmSync(dir, { recursive: true, force: true });
});

const req = (over: Partial<Parameters<BuiltDriver['driver']['generate']>[0]> = {}) => ({
  jobId: 'j1', prompt: 'a red ball bouncing', seed: 11, steps: 3, guidance: 2, numFrames: 8, fps: 4, out: join(dir, 'a.mp4'),
  ...over,
});

describe('driver (tiny config, in-process engine)', () => {
  it('makes an MP4 that ffprobe reports at the requested length, with progress per step and phase timings', async () => {
    const events: ProgressEvent[] = [];
    const r = await built.driver.generate(req({ onProgress: (e) => events.push(e) }));
    expect(r).toMatchObject({ frames: 8, fps: 4, width: 32, height: 32, latentFrames: 4, steps: 3 });
    const p = probeMp4(r.path);
    expect(p).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width: 32, height: 32, fps: 4, frames: 8, faststart: true });
    expect(p.duration).toBeCloseTo(2, 6);
    const steps = events.filter((e) => e.phase === 'sample' && e.step! > 0);
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3]);
    expect(steps.every((e) => e.total === 3 && e.jobId === 'j1')).toBe(true);
    const pct = events.map((e) => e.percent);
    expect(pct).toEqual([...pct].sort((a, b) => a - b));
    expect(pct.at(-1)).toBe(100);
    expect(events.map((e) => e.phase)).toEqual(['text', 'sample', 'sample', 'sample', 'sample', 'decode', 'mp4']);
    for (const k of ['textMs', 'sampleMs', 'decodeMs', 'mp4Ms', 'totalMs'] as const) expect(r.timings[k]).toBeGreaterThan(0);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.sampleMs + r.timings.decodeMs + r.timings.mp4Ms);
  });

  it('gives identical bytes for the same seed and different bytes for another seed or prompt', async () => {
    const a = await built.driver.generate(req({ out: join(dir, 's1.mp4') }));
    const b = await built.driver.generate(req({ out: join(dir, 's2.mp4'), jobId: 'other' }));
    const c = await built.driver.generate(req({ out: join(dir, 's3.mp4'), seed: 12 }));
    const d = await built.driver.generate(req({ out: join(dir, 's4.mp4'), prompt: 'a blue cube' }));
    expect(sha(a.path)).toBe(sha(b.path));
    expect(sha(c.path)).not.toBe(sha(a.path));
    expect(sha(d.path)).not.toBe(sha(a.path));
  });

  it('CFG as two micro-batches gives the same clip as one 2B batch', async () => {
    const a = await built.driver.generate(req({ out: join(dir, 'm1.mp4'), cfgMode: 'batch' }));
    const b = await built.driver.generate(req({ out: join(dir, 'm2.mp4'), cfgMode: 'micro' }));
    expect(sha(b.path)).toBe(sha(a.path));
  });

  it('runs without CFG (guidance 0) and with the 2M solver', async () => {
    const events: ProgressEvent[] = [];
    const r = await built.driver.generate(req({ guidance: 0, solver: 'dpmpp-2m', out: join(dir, 'nocfg.mp4'), onProgress: (e) => events.push(e) }));
    expect(probeMp4(r.path)).toMatchObject({ frames: 8, fps: 4 });
    expect(events.filter((e) => e.phase === 'sample' && e.step! > 0)).toHaveLength(3);
  });

  it('makes shorter clips (rounding the latent clip up to the temporal patch, trimming frames) and rejects too long ones', async () => {
    const r = await built.driver.generate(req({ numFrames: 3, out: join(dir, 'short.mp4') }));
    expect(r.latentFrames).toBe(2);
    expect(probeMp4(r.path)).toMatchObject({ frames: 3, fps: 4 });
    await expect(built.driver.generate(req({ numFrames: 9 }))).rejects.toThrow(
      'clip of 9 frames needs 6 latent frames, but the model makes at most 4 (= 8 frames)',
    );
  });

  it('stops a cancelled job at the next step and counts it', async () => {
    const ac = new AbortController();
    await expect(
      built.driver.generate(req({ signal: ac.signal, onProgress: (e) => e.step === 1 && ac.abort() })),
    ).rejects.toThrow('job j1 cancelled');
    const p = parsePrometheusText(await metrics.render());
    const jobs = p.get('uvit_jobs_total')!.samples;
    expect(jobs.find((s) => s.labels?.status === 'cancelled')?.value).toBe(1);
    expect(jobs.find((s) => s.labels?.status === 'completed')?.value).toBe(9); // 1 + 4 + 2 + 1 + 1 clips above
    expect(jobs.find((s) => s.labels?.status === 'failed')?.value).toBe(1);
    expect(p.get('uvit_sampler_steps_total')!.samples[0].value).toBe(9 * 3 + 1);
    expect(p.get('uvit_job_latency_seconds')!.samples.find((s) => s.labels?.le === '+Inf')?.value).toBe(9);
  });
});
