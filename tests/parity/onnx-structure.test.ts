// Structural equalities of the ONNX engine: video with F=1, pt=1 equals the 2-D model (docs/model.md §8), and a model
// split by hand into segments with skips crossing equals the unsplit model within 1e-5 (§9).
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { Engine } from '../../gpu-backend/engine/engine.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { initWeights, initWeightsToFile } from '../../gpu-backend/model/initWeights.ts';
import { planFolded } from '../../gpu-backend/partition/index.ts';
import type { Plan } from '../../gpu-backend/partition/types.ts';
import type { Segment } from '../../gpu-backend/model/chain.ts';
import { makeInputs, maxAbs } from './onnxHelpers.ts';

const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.release();
});
const create = async (o: Parameters<typeof Engine.create>[0]) => {
  const e = await Engine.create({ threads: 1, ...o });
  engines.push(e);
  return e;
};

const base = { img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 6, num_heads: 2, num_classes: 5 };

describe('external data', () => {
  it('a segment model with its weights in an external data file gives bit-identical results', async () => {
    const cfg = parseConfig({ ...base, num_frames: 4, temporal_patch_size: 2 });
    const weights = initWeights(cfg, 3);
    const dir = join('/tmp', `a2-ext-engine-${process.pid}`);
    const inline = await create({ config: cfg, weights });
    const ext = await create({ config: cfg, weights, externalDataOverBytes: 0, workDir: dir });
    const files = readdirSync(dir);
    expect(files.some((f) => f.endsWith('.data'))).toBe(true);
    const onnxFile = files.find((f) => f.endsWith('.onnx'))!;
    expect(statSync(join(dir, onnxFile)).size).toBeLessThan(50_000); // weights are not inline
    const inputs = makeInputs(cfg, 2, 4, 2);
    expect(maxAbs(await ext.forward(inputs), await inline.forward(inputs))).toBe(0);
  });

  it('from a weights file: the file route (buildSegmentFile) equals the in-memory route; its temp folder goes on release', async () => {
    const cfg = parseConfig({ ...base, num_frames: 4, temporal_patch_size: 2 });
    const dir = mkdtempSync(join(tmpdir(), 'engine-file-route-'));
    const wPath = join(dir, 'w.safetensors');
    initWeightsToFile(cfg, 4, wPath);
    const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('uvit-segments-')));
    const plan = planFolded(cfg, 2);
    const mem = await create({ config: cfg, weightsPath: wPath, plan });
    const file = await Engine.create({ config: cfg, weightsPath: wPath, plan, threads: 1, externalDataOverBytes: 0 });
    const made = readdirSync(tmpdir()).filter((f) => f.startsWith('uvit-segments-') && !before.has(f));
    expect(made).toHaveLength(1);
    expect(readdirSync(join(tmpdir(), made[0])).filter((f) => f.endsWith('.onnx.data'))).toHaveLength(plan.segments.length);
    const inputs = makeInputs(cfg, 2, 6, 4);
    expect(maxAbs(await file.forward(inputs), await mem.forward(inputs))).toBe(0);
    await file.release();
    expect(existsSync(join(tmpdir(), made[0]))).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('video F=1, pt=1 equals the 2-D model', () => {
  it('same weights (Conv3d weights reshaped; 3x3x3 final conv sees only its middle slice)', async () => {
    const cfg2 = parseConfig(base);
    const cfgV = parseConfig({ ...base, num_frames: 1, temporal_patch_size: 1 });
    const wV = initWeights(cfgV, 5);
    const w2 = new Map<string, Tensor<'float32'>>();
    for (const [k, t] of wV) w2.set(k, t);
    const pe = wV.get('patch_embed.proj.weight')!; // [D,C,1,p,p] -> [D,C,p,p]: same memory
    w2.set('patch_embed.proj.weight', float32([32, 4, 2, 2], pe.data));
    const fl = wV.get('final_layer.weight')!; // [C,C,3,3,3]: with F=1 and zero padding only kt=1 acts
    const mid = new Float32Array(4 * 4 * 9);
    for (let o = 0; o < 16; o++) mid.set(fl.data.subarray(o * 27 + 9, o * 27 + 18), o * 9);
    w2.set('final_layer.weight', float32([4, 4, 3, 3], mid));

    const e2 = await create({ config: cfg2, weights: w2 });
    const eV = await create({ config: cfgV, weights: wV });
    const in2 = makeInputs(cfg2, 2, 21);
    const outV = await eV.forward({ ...in2, x: float32([2, 4, 1, 8, 8], in2.x.data) });
    const out2 = await e2.forward(in2);
    expect(outV.dims).toEqual([2, 4, 1, 8, 8]);
    const err = maxAbs(float32([2, 4, 8, 8], outV.data), out2);
    console.log(`video F=1 vs 2-D: max abs ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-5);
  });
});

/** A hand-made plan: n = 3 (chain 0..6), two segments cut after chain index `cut` on stages 0 and 1. */
function twoSegmentPlan(cut: number): Plan {
  const n = 3;
  const inside = (c: number, s: number, e: number) => c >= s && c < e;
  const seg = (index: number, start: number, end: number): Segment => {
    const skipsIn: number[] = [];
    const skipsOut: number[] = [];
    for (let i = 0; i < n; i++) {
      const consumer = 2 * n - i;
      if (inside(consumer, start, end) && !inside(i, start, end)) skipsIn.push(i);
      if (inside(i, start, end) && !inside(consumer, start, end)) skipsOut.push(i);
    }
    return { index, stage: index, start, end, embed: start === 0, head: end === 2 * n + 1, skipsIn, skipsOut };
  };
  const segments = [seg(0, 0, cut), seg(1, cut, 7)];
  return {
    version: 1,
    partition: 'sequential',
    numStages: 2,
    segments,
    stages: segments.map((s) => ({ stage: s.stage, segments: [s.index], params: [], paramBytes: 0, flops: 0 })),
    skips: [0, 1, 2].map((i) => {
      const from = i < cut ? 0 : 1;
      const to = 2 * n - i < cut ? 0 : 1;
      return { skip: i, fromSegment: from, toSegment: to, fromStage: from, toStage: to, crossesNetwork: from !== to };
    }),
  };
}

describe('hand-split segments equal the unsplit model (1e-5)', () => {
  for (const cut of [2, 4]) {
    it(`cut after chain index ${cut - 1} (skips ${cut === 2 ? '0,1' : '0,1,2'} made before the cut)`, async () => {
      const cfg = parseConfig({ ...base, clip_dim: undefined, num_classes: 5 });
      const weights = initWeights(cfg, 9);
      const plan = twoSegmentPlan(cut);
      expect(plan.segments[0].skipsOut.length).toBeGreaterThan(0);
      const whole = await create({ config: cfg, weights, intermediates: true });
      const split = await create({ config: cfg, weights, plan, intermediates: true });
      for (const B of [1, 3]) {
        const inputs = makeInputs(cfg, B, 30 + B);
        const a = await whole.forwardDetailed(inputs);
        const b = await split.forwardDetailed(inputs);
        expect(b.timings.length).toBe(2);
        const err = maxAbs(a.eps, b.eps);
        console.log(`split at ${cut}, B=${B}: eps max abs ${err.toExponential(2)}`);
        expect(err).toBeLessThanOrEqual(1e-5);
        for (const [k, t] of a.intermediates) expect(maxAbs(b.intermediates.get(k)!, t), k).toBeLessThanOrEqual(1e-5);
      }
    });
  }
});
