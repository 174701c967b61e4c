// The ONNX engine against the float64 reference forward on every variant docs/model.md §7 lists, plus the video
// extension (§8): output and every intermediate within 1e-4 max abs. Small configs, seeded weights (initWeights).
import { afterAll, describe, expect, it } from 'vitest';
import { type Tensor } from '../../shared/tensor.ts';
import { Engine } from '../../gpu-backend/engine/engine.ts';
import type { AttentionImpl } from '../../gpu-backend/model/build/layers.ts';
import { parseConfig, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { initWeights } from '../../gpu-backend/model/initWeights.ts';
import { referenceForward } from '../../gpu-backend/model/reference.ts';
import { makeInputs, maxAbs } from './onnxHelpers.ts';

const TOL = 1e-4;
const base = { img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 4, num_heads: 2, mlp_ratio: 4 };

const cases: Array<{ name: string; cfg: Record<string, unknown>; batches: number[]; frames?: number[] }> = [
  { name: 'class, mlp_time_embed=True', cfg: { ...base, num_classes: 5, mlp_time_embed: true }, batches: [2] },
  { name: 'class, qkv_bias=True', cfg: { ...base, num_classes: 5, qkv_bias: true }, batches: [2] },
  { name: 'class, conv=False', cfg: { ...base, num_classes: 5, conv: false }, batches: [2] },
  { name: 'text (uvit_t2i, extras 1+n)', cfg: { ...base, clip_dim: 24, num_clip_token: 5 }, batches: [2] },
  { name: 'unconditional', cfg: { ...base }, batches: [2] },
  { name: 'RGB p=4, H=3 (odd heads), odd D=45 (Dh 15), odd depth 5', cfg: { img_size: 16, patch_size: 4, in_chans: 3, embed_dim: 45, depth: 5, num_heads: 3, num_classes: 4 }, batches: [2] },
  { name: 'dynamic batch B=1 and B=3 in one session', cfg: { ...base, num_classes: 5 }, batches: [1, 3] },
  { name: 'video pt=1, F=4, clips F\'=4 and 2', cfg: { ...base, num_classes: 5, num_frames: 4 }, batches: [2], frames: [4, 2] },
  { name: 'video pt=2 text, F=4, clips F\'=4 and 2', cfg: { ...base, clip_dim: 16, num_clip_token: 3, num_frames: 4, temporal_patch_size: 2 }, batches: [2], frames: [4, 2] },
  { name: 'video pt=2 uncond, conv=False, mlp_time, qkv_bias, F=6, clip F\'=4', cfg: { ...base, num_frames: 6, temporal_patch_size: 2, conv: false, mlp_time_embed: true, qkv_bias: true }, batches: [1], frames: [6, 4] },
];

const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.release();
});

async function compare(cfg: UViTConfig, weights: Map<string, Tensor<'float32'>>, engine: Engine, B: number, frames?: number, seed = 7) {
  const inputs = makeInputs(cfg, B, seed + B, frames);
  const got = await engine.forwardDetailed(inputs);
  const ref = referenceForward(cfg, weights, inputs as Parameters<typeof referenceForward>[2]);
  const errs: Record<string, number> = { output: maxAbs(got.eps, ref.output) };
  for (const [name, t] of ref.intermediates) {
    const g = got.intermediates.get(name);
    expect(g, `engine intermediate ${name}`).toBeDefined();
    errs[name] = maxAbs(g!, t);
  }
  expect(Object.keys(errs).length).toBeGreaterThan(5);
  return errs;
}

describe.each(['contrib', 'ops', 'mha'] as AttentionImpl[])('ONNX engine (attention %s) vs float64 reference (1e-4 max abs, output and every intermediate)', (attention) => {
  for (const c of cases) {
    it(c.name, async () => {
      const cfg = parseConfig(c.cfg);
      const weights = initWeights(cfg, 11);
      const engine = await Engine.create({ config: cfg, weights, intermediates: true, threads: 1, attention });
      engines.push(engine);
      for (const B of c.batches) {
        for (const F of c.frames ?? [undefined]) {
          const errs = await compare(cfg, weights, engine, B, F);
          const worst = Math.max(...Object.values(errs));
          console.log(`[${attention}] ${c.name} B=${B}${F ? ` F'=${F}` : ''}: output ${errs.output.toExponential(2)}, worst ${worst.toExponential(2)}`);
          for (const [k, v] of Object.entries(errs)) expect(v, `${k} (B=${B}, F'=${F})`).toBeLessThanOrEqual(TOL);
        }
      }
    });
  }

  it('near-eps LayerNorm inputs (patch-token variance ~ eps)', async () => {
    const cfg = parseConfig({ ...base, num_classes: 5 });
    const weights = initWeights(cfg, 12);
    // shrink the patch embedding and pos_embed so the patch tokens entering norm1 have variance ~1e-6..1e-5
    for (const k of ['patch_embed.proj.weight', 'pos_embed']) weights.get(k)!.data.forEach((v, i, a) => (a[i] = v * 1e-3));
    weights.get('patch_embed.proj.bias')!.data.fill(0.3);
    const engine = await Engine.create({ config: cfg, weights, intermediates: true, threads: 1, attention });
    engines.push(engine);
    const inputs = makeInputs(cfg, 2, 3);
    const got = await engine.forwardDetailed(inputs);
    const ref = referenceForward(cfg, weights, inputs as Parameters<typeof referenceForward>[2]);
    // the patch tokens really are near-eps: per-token variance over D below 1e-4
    const tok = ref.intermediates.get('tokens_after_pos_embed')!;
    const D = 32;
    let maxVar = 0;
    for (let r = 0; r < tok.data.length / D; r++) {
      if (r % 18 < 2) continue; // skip the label and time tokens of each sample (T = 2 + 16)
      const row = tok.data.subarray(r * D, (r + 1) * D) as Float32Array;
      const mean = row.reduce((a, b) => a + b, 0) / D;
      maxVar = Math.max(maxVar, row.reduce((a, b) => a + (b - mean) ** 2, 0) / D);
    }
    expect(maxVar).toBeLessThan(1e-4);
    const err = maxAbs(got.eps, ref.output);
    console.log(`[${attention}] near-eps LN: patch-token variance <= ${maxVar.toExponential(2)}, output err ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(TOL);
    for (const [name, t] of ref.intermediates) expect(maxAbs(got.intermediates.get(name)!, t), name).toBeLessThanOrEqual(TOL);
  });
});
