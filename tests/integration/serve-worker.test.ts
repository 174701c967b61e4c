// The backend group worker against a fake lease-API edge: signed lease → generate → heartbeats → signed PUT upload;
// non-retryable failure for a size the model cannot make; edge-side cancel; bad secret; `uvit serve` wiring with
// /metrics; and a 2-stage spawned pipeline that loses a stage, fails that job retryably and recovers for the next.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver, type BuiltDriver } from '../../gpu-backend/demo/demo.ts';
import { probeMp4 } from '../../gpu-backend/driver/ffmpeg.ts';
import { parsePrometheusText } from '../../gpu-backend/metrics/prometheus.ts';
import { Worker, type JobOutcome } from '../../gpu-backend/serve/worker.ts';
import { startServe } from '../../gpu-backend/cli/commands/serve.ts';
import { FakeEdge, job } from './serve-fakeEdge.ts';
import { writeTinyGroup } from './serve-fixtures.ts';

const SECRET = 'test-secret-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'e2-worker-'));
const groupPath = writeTinyGroup(dir);
let edge: FakeEdge;
let built: BuiltDriver;
const logs: string[] = [];

beforeAll(async () => {
  edge = new FakeEdge(SECRET);
  await edge.start();
  built = await createDriver(groupPath);
});
afterAll(async () => {
  await built?.close();
  await edge?.stop();
  if (process.env.E2_DEBUG) console.log(logs.join("\n"));
  rmSync(dir, { recursive: true, force: true });
});

function worker(over: Partial<ConstructorParameters<typeof Worker>[0]> = {}, outcomes: JobOutcome[] = []): Worker {
  return new Worker({
    edge: edge.url, secret: SECRET, group: 'g1', model: 'uvit-tiny', capacity: 1, driver: built.driver,
    solver: 'dpmpp-fast3', cfgMode: 'batch', workDir: join(dir, 'work'), waitMs: 1000,
    log: (l) => logs.push(l), onJobEnd: (o) => outcomes.push(o), ...over,
  });
}

describe('worker (fake edge, in-process engine)', () => {
  it('leases, heartbeats progress, and uploads a verified MP4 with Content-Length and X-Content-SHA256', async () => {
    const outcomes: JobOutcome[] = [];
    const w = worker({}, outcomes);
    w.start();
    edge.push(job());
    await edge.until((r) => r.results.length === 1);
    await w.stop();
    const r = edge.rec.results[0];
    expect(r.contentLength).toBe(r.bytes.length);
    expect(r.sha256).toBe(createHash('sha256').update(r.bytes).digest('hex'));
    expect(edge.rec.leases[0]).toMatchObject({ group: 'g1', model: 'uvit-tiny', capacity: 1 });
    const beats = edge.rec.heartbeats.filter((h) => h.lease === r.lease).map((h) => h.progress);
    expect(beats.length).toBeGreaterThan(0);
    expect(beats).toEqual([...beats].sort((a, b) => a - b));
    expect(edge.rec.rejected).toEqual([]);
    expect(outcomes[0]).toMatchObject({ status: 'completed', sha256: r.sha256 });
    const f = join(dir, 'uploaded.mp4');
    writeFileSync(f, r.bytes);
    expect(probeMp4(f)).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width: 32, height: 32, fps: 4, frames: 8 });
    // uploaded as artifacts with its content variants, and completed with all three
    expect(r.artifacts).toEqual(['video', 'thumbnail', 'spritesheet']);
    const got = edge.rec.artifacts.filter((a) => a.lease === r.lease);
    expect(got.map((a) => [a.name, a.content_type])).toEqual([['video', 'video/mp4'], ['thumbnail', 'image/webp'], ['spritesheet', 'image/jpeg']]);
    expect(got[1].body.subarray(8, 12).toString('latin1')).toBe('WEBP'); // RIFF....WEBP
    expect([...got[2].body.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]); // a JPEG's start-of-image marker
  });

  it('fails a job it cannot make as not retryable, and stops on an edge-side cancel without uploading', async () => {
    const outcomes: JobOutcome[] = [];
    const w = worker({}, outcomes);
    w.start();
    edge.push(job({ id: 'video_big', size: '64x64', width: 64, height: 64 }));
    await edge.until((r) => r.fails.length === 1);
    expect(edge.rec.fails[0]).toMatchObject({ retryable: false, code: 'unsupported_size' });
    expect(edge.rec.fails[0].reason).toBe('size 64x64 is not supported: model uvit-tiny makes 32x32');
    const before = edge.rec.results.length;
    edge.cancel.add('video_cancel');
    edge.push(job({ id: 'video_cancel', steps: 300 }));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => outcomes.length === 2 && (clearInterval(t), resolve()), 50);
    });
    await w.stop();
    expect(outcomes[1]).toMatchObject({ jobId: 'video_cancel', status: 'cancelled' });
    expect(edge.rec.results.length).toBe(before);
    expect(edge.rec.fails.length).toBe(1);
  });

  it('hands a running job back as retryable when it is stopped', async () => {
    const outcomes: JobOutcome[] = [];
    const w = worker({}, outcomes);
    w.start();
    // Long enough that the job cannot finish between the progress heartbeat and stop(), even on a loaded machine.
    edge.push(job({ id: 'video_shutdown', steps: 20_000 }));
    await edge.until((r) => r.heartbeats.some((b) => edge.jobOf.get(b.lease) === 'video_shutdown' && b.progress > 2));
    await w.stop();
    expect(outcomes[0]).toMatchObject({ jobId: 'video_shutdown', status: 'failed', retryable: true });
    expect(edge.rec.fails.at(-1)).toMatchObject({ code: 'backend_shutdown', retryable: true });
  });

  it('keeps polling with back-off when the edge rejects its signature', async () => {
    const w = worker({ secret: 'wrong' });
    w.start();
    await edge.until((r) => r.rejected.length >= 1);
    await w.stop();
    expect(edge.rec.rejected[0]).toBe('signature mismatch');
    expect(logs.some((l) => /lease: edge answered 401: .*invalid_signature.*retrying in \d+ ms/.test(l))).toBe(true);
  });
});

describe('uvit serve', () => {
  it('in process: serves /metrics and completes a job', async () => {
    process.env.E2_TEST_SECRET = SECRET;
    const lines: string[] = [];
    const ctx = { log: (l: string) => lines.push(l), out: () => {} };
    const h = await startServe(
      { edge: edge.url, config: groupPath, 'secret-env': 'E2_TEST_SECRET', stages: '0', capacity: '1', metrics: '127.0.0.1:0', 'wait-ms': '1000', group: 'serve-test' },
      ctx,
    );
    try {
      const n = edge.rec.results.length;
      edge.push(job({ id: 'video_serve' }));
      await edge.until((r) => r.results.length === n + 1);
      const text = await (await fetch(`http://127.0.0.1:${h.metricsPort}/metrics`)).text();
      const p = parsePrometheusText(text);
      expect(p.get('uvit_jobs_total')!.samples.find((s) => s.labels?.status === 'completed')?.value).toBe(1);
      expect(p.get('uvit_sampler_steps_total')!.samples[0].value).toBe(3);
      expect(p.get('uvit_job_latency_seconds')!.type).toBe('histogram');
      expect(lines.some((l) => l.includes('group serve-test serving model uvit-tiny'))).toBe(true);
    } finally {
      await h.stop();
    }
  });

  it('refuses to start without the secret', async () => {
    delete process.env.E2_NO_SECRET;
    await expect(startServe({ edge: edge.url, config: groupPath, 'secret-env': 'E2_NO_SECRET', stages: '0' }, { log: () => {}, out: () => {} }))
      .rejects.toThrow('the backend secret is not set: export E2_NO_SECRET=');
  });

  it('2 spawned stages, capacity 2: same clip as in process, also with 2 jobs in flight; a killed stage fails its job (retryable) and the group recovers', async () => {
    process.env.E2_TEST_SECRET = SECRET;
    const h = await startServe(
      { edge: edge.url, config: groupPath, 'secret-env': 'E2_TEST_SECRET', stages: '2', capacity: '2', 'wait-ms': '1000', 'work-dir': join(dir, 'serve2') },
      { log: () => {}, out: () => {} },
    );
    try {
      expect(h.backend.numStages).toBe(2);
      const ref = edge.rec.results[0].sha256; // lease_1 above: the same job in process, CFG as one 2B batch
      const n = edge.rec.results.length;
      // two jobs in flight at once on the pipeline: each gives the bytes it gives alone
      edge.push(job({ id: 'video_a' }));
      edge.push(job({ id: 'video_b' }));
      await edge.until((r) => r.results.length === n + 2);
      expect(edge.rec.results.slice(n).map((r) => r.sha256)).toEqual([ref, ref]);
      // kill stage 1 while a long job runs: long enough not to finish before the kill lands (200 steps of the tiny
      // model can run from 0 to 85 % between two heartbeats)
      const fails = edge.rec.fails.length;
      edge.push(job({ id: 'video_killed', steps: 20_000 }));
      await edge.until((r) => r.heartbeats.some((b) => b.progress > 2 && edge.jobOf.get(b.lease) === 'video_killed'));
      expect(h.backend.describe()).toMatch(/^2 stages \((sequential|folded)\) spawned at /);
      h.backend.killStage!(1);
      await edge.until((r) => r.fails.length === fails + 1);
      expect(edge.rec.fails.at(-1)).toMatchObject({ retryable: true });
      expect(edge.rec.fails.at(-1)!.reason).toMatch(/stage/);
      edge.push(job({ id: 'video_after' }));
      await edge.until((r) => r.results.length === n + 3, 90_000);
      expect(edge.rec.results.at(-1)!.sha256).toBe(ref);
    } finally {
      await h.stop();
    }
  });
});
