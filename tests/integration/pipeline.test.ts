// Spawned stage processes over real TCP vs the in-process unsplit engine; failure handling.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { encodeFrameBytes, frameText } from '../../shared/frame.ts';
import { jobIdOf } from '../../shared/jobId.ts';
import { Engine } from '../../gpu-backend/engine/engine.ts';
import type { UViTConfig } from '../../gpu-backend/model/config.ts';
import type { PartitionKind } from '../../gpu-backend/partition/types.ts';
import { PipelineClient } from '../../gpu-backend/pipeline/client/pipelineClient.ts';
import { spawnStages, type StageGroup } from '../../gpu-backend/pipeline/client/spawn.ts';
import { writePlan } from '../../gpu-backend/pipeline/setup.ts';
import { GOLDEN, goldenConfig, goldenInputs, inputsFor, maxAbsDiff, videoSetup } from './pipeline-helpers.ts';
import { RawStageClient, controlMeta } from './stage-raw.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'e1-pipeline-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function withGroup<T>(planPath: string, fn: (g: StageGroup, c: PipelineClient) => Promise<T>): Promise<T> {
  const g = await spawnStages(planPath, { threads: 1 });
  let c: PipelineClient | undefined;
  try {
    c = await PipelineClient.connect(g.plan, g.addresses, { secret: g.secret, timeoutMs: 30_000 });
    return await fn(g, c);
  } finally {
    c?.close();
    await g.close();
  }
}

describe('stage pipeline matches the unsplit engine', () => {
  const cases: { name: string; setup: () => { cfg: UViTConfig; weights: string } }[] = [
    { name: 'golden a_cls_conv', setup: () => ({ cfg: goldenConfig(), weights: join(GOLDEN, 'weights.safetensors') }) },
    { name: 'small text video', setup: () => videoSetup(join(dir, 'video')) },
  ];
  for (const { name, setup } of cases) {
    it(`${name}: sequential and folded, 2 stages, several micro-batches and jobs in flight`, async () => {
      const { cfg, weights } = setup();
      const engine = await Engine.create({ config: cfg, weightsPath: weights, threads: 1 });
      const golden = name.startsWith('golden');
      const inputs = golden ? [goldenInputs(), inputsFor(cfg, 2, 5, 300)] : [inputsFor(cfg, 1, 1), inputsFor(cfg, 2, 2, 900)];
      const ref: Tensor<'float32'>[] = [];
      for (const i of inputs) ref.push(await engine.forward(i));
      await engine.release();
      for (const kind of ['sequential', 'folded'] as PartitionKind[]) {
        const plan = writePlan(join(dir, name.replace(/\W/g, '_')), cfg, weights, kind);
        await withGroup(plan, async (g, c) => {
          // two jobs, two micro-batches each, all in flight together
          const outs = await Promise.all([
            c.forward('job-a', 0, 0, inputs[0]),
            c.forward('job-a', 0, 1, inputs[1]),
            c.forward('job-b', 0, 0, inputs[1]),
            c.forward('job-b', 0, 1, inputs[0]),
          ]);
          expect(maxAbsDiff(outs[0], ref[0])).toBeLessThanOrEqual(1e-5);
          expect(maxAbsDiff(outs[1], ref[1])).toBeLessThanOrEqual(1e-5);
          expect(maxAbsDiff(outs[2], ref[1])).toBeLessThanOrEqual(1e-5);
          expect(maxAbsDiff(outs[3], ref[0])).toBeLessThanOrEqual(1e-5);
          // determinism: same inputs give the same bytes whatever else was in flight
          expect(Buffer.from(outs[0].data.buffer).equals(Buffer.from(outs[3].data.buffer))).toBe(true);
          const stats = await c.refreshStats();
          const crossing = g.plan.skips.filter((s) => s.crossesNetwork).length;
          if (kind === 'folded') {
            expect(crossing).toBe(0);
            expect(c.metrics.skipBytes).toBe(0);
          } else {
            // every crossing skip of every micro-batch moved once: 4 forwards, [B, T, D] float32 each
            expect(crossing).toBeGreaterThan(0);
            expect(c.metrics.skipBytes).toBeGreaterThan(0);
          }
          expect(c.metrics.activationBytes).toBeGreaterThan(0);
          expect(stats.every((s) => s.runs > 0 && s.busyMs > 0)).toBe(true);
        });
      }
      if (golden) {
        // the in-process engine itself matches the official output (sanity of the reference)
        const { readNpy } = await import('../../gpu-backend/model/npy.ts');
        expect(maxAbsDiff(ref[0], readNpy(join(GOLDEN, 'output.npy')))).toBeLessThanOrEqual(1e-4);
      }
    });
  }
});

describe('stage pipeline failures', () => {
  it('a killed stage fails the in-flight job with a clear error; a restarted group serves the next job', async () => {
    const cfg = goldenConfig();
    const plan = writePlan(join(dir, 'kill'), cfg, join(GOLDEN, 'weights.safetensors'), 'sequential');
    const inp = goldenInputs();
    await withGroup(plan, async (g, c) => {
      await c.forward('warm', 0, 0, inp);
      const pending = Promise.all(Array.from({ length: 6 }, (_, k) => c.forward('doomed', k, 0, inp)));
      g.kill(1);
      // Two clear errors race here, both naming stage 1: the driver sees its own link to stage 1 drop, or stage 0
      // reports first that it could not send the job's skip/stream to stage 1.
      await expect(pending).rejects.toThrow(
        /lost stage 1 at 127\.0\.0\.1:\d+|cannot send \S+ of job [0-9a-f]+ step \d+ micro-batch \d+ to stage 1: .*127\.0\.0\.1:\d+: .*(ECONNRESET|EPIPE|ECONNREFUSED|closed)/,
      );
      await expect(c.forward('after', 0, 0, inp)).rejects.toThrow(/lost stage 1/);
    });
    await withGroup(plan, async (_g, c) => {
      const eps = await c.forward('next-job', 0, 0, inp);
      expect(eps.dims).toEqual(inp.x.dims);
    });
  });

  it('a torn frame or a failing job is rejected with an error to that job; the stage keeps serving', async () => {
    const cfg = goldenConfig();
    const plan = writePlan(join(dir, 'torn'), cfg, join(GOLDEN, 'weights.safetensors'), 'sequential');
    const inp = goldenInputs();
    await withGroup(plan, async (g, c) => {
      // a job opened on stage 1 by a raw driver connection; a raw peer link (it holds the group secret too) carries a
      // corrupted activation of it: the CRC catches it, the job fails with a clear error to its driver only
      const job = jobIdOf('torn-job');
      const drv = await RawStageClient.open(g.addresses[1], { secret: g.secret, role: 'driver', stage: 1, id: 4242 });
      drv.sendText(controlMeta('job', 4242, job), '');
      await drv.next((f) => f.header.kind === 'job');
      const peer = await RawStageClient.open(g.addresses[1], { secret: g.secret, role: 'peer', stage: 1, id: 0 });
      const h = new Float32Array(2 * 66 * 64);
      const bad = encodeFrameBytes({ ...controlMeta('data', 4242, job), segment: 1, role: 'stream' }, { dtype: 'float32', dims: [2, 66, 64], data: h });
      bad[bad.length - 3] ^= 0x40;
      peer.write(bad);
      await peer.closed;
      const err = await drv.next((f) => f.header.kind === 'error');
      expect(err.header.jobId).toBe(job);
      expect(frameText(err)).toMatch(/stage 1: rejected a frame .* torn frame: CRC32 mismatch/);
      drv.destroy();
      // a job whose compute fails (bad input shape) fails alone, with the stage's message
      const badInp = { ...inp, x: { dtype: 'float32' as const, dims: [2, 4, 8, 8], data: new Float32Array(2 * 4 * 64) } };
      const good = c.forward('ok-job', 0, 0, inp);
      await expect(c.forward('bad-job', 0, 0, badInp)).rejects.toThrow(/stage 0: segment 0 failed for job [0-9a-f]{32} step 0 micro-batch 0: /);
      expect((await good).dims).toEqual(inp.x.dims);
      // the group still serves jobs
      const eps = await c.forward('after-torn', 0, 0, inp);
      expect(eps.dims).toEqual(inp.x.dims);
      const stats = await c.refreshStats();
      expect(stats[1].tornFrames).toBe(1);
      // a second driver on the same group with the float16 transport: half the bytes on the wire, eps close to f32
      // (f16 rounding of every tensor crossing a link: about 2^-11 relative, so a loose bound, not the 1e-5 parity)
      const c16 = await PipelineClient.connect(g.plan, g.addresses, { secret: g.secret, f16: true });
      try {
        const before = await c16.refreshStats();
        const e16 = await c16.forward('f16-job', 0, 0, inp);
        const after = await c16.refreshStats();
        const ref = await c.forward('f32-job', 0, 0, inp);
        const scale = Math.max(...Array.from(ref.data as Float32Array, Math.abs));
        expect(maxAbsDiff(e16, ref)).toBeLessThan(2e-2 * scale);
        expect(maxAbsDiff(e16, ref)).toBeGreaterThan(0);
        const sent = (s: typeof stats) => s.reduce((a, x) => a + x.sent.stream + x.sent.skip, 0);
        const fullBytes = 2 * 66 * 64 * 4 * (1 + g.plan.skips.filter((r) => r.crossesNetwork).length);
        expect(sent(after) - sent(before)).toBe(fullBytes / 2);
      } finally {
        c16.close();
      }
    });
  });
});
