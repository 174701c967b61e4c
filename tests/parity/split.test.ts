// Split models (partition plans run by the in-process Engine) against the golden vectors and the unsplit engine.
// docs/model.md §9: both partitions must give the unsplit model's result within 1e-5 (the same ops run in the same order).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { Engine, type ForwardInputs, type ForwardResult } from '../../gpu-backend/engine/engine.ts';
import { parseConfig, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { expectedParams } from '../../gpu-backend/model/weights.ts';
import { planFor } from '../../gpu-backend/partition/index.ts';
import type { Plan } from '../../gpu-backend/partition/types.ts';
import { GOLDEN_DIR } from '../golden.ts';

function maxAbs(a: Tensor, b: Tensor): number {
  expect(a.dims).toEqual(b.dims);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

/** Deterministic uniform values in [-a, a) (xorshift32), so the test needs no weight file. */
function rand(seed: number, len: number, a: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * a;
  }
  return out;
}

const SPLITS: Array<[number, 'sequential' | 'folded']> = [
  [2, 'sequential'],
  [2, 'folded'],
  [3, 'sequential'],
  [3, 'folded'],
];

function describeSplits(
  name: string,
  cfg: UViTConfig,
  makeEngine: (plan?: Plan, intermediates?: boolean) => Promise<Engine>,
  inputs: () => ForwardInputs,
  golden?: { output: Tensor; intermediates: Map<string, Tensor> },
) {
  describe(name, () => {
    let unsplit: ForwardResult;
    const engines: Engine[] = [];
    beforeAll(async () => {
      const e = await makeEngine(undefined, !!golden);
      engines.push(e);
      unsplit = await e.forwardDetailed(inputs());
    });
    afterAll(async () => {
      for (const e of engines) await e.release();
    });

    it('the unsplit output is finite and non-trivial', () => {
      let m = 0;
      for (const v of unsplit.eps.data) {
        expect(Number.isFinite(v)).toBe(true);
        m = Math.max(m, Math.abs(v));
      }
      expect(m).toBeGreaterThan(0.05);
    });

    for (const [S, partition] of SPLITS) {
      it(`S=${S} ${partition}: equals the unsplit engine within 1e-5${golden ? ' and the golden vectors within 1e-4' : ''}`, async () => {
        const plan = planFor(cfg, S, partition);
        expect(plan.numStages).toBe(S);
        const e = await makeEngine(plan, !!golden);
        engines.push(e);
        expect(e.segments.length).toBe(plan.segments.length);
        const res = await e.forwardDetailed(inputs());
        const vsUnsplit = maxAbs(res.eps, unsplit.eps);
        const crossing = plan.skips.filter((r) => r.crossesNetwork).length;
        console.log(`${name} S=${S} ${partition}: segments ${plan.segments.map((s) => `${s.stage}:[${s.start},${s.end})`).join(' ')}, ` +
          `network skips ${crossing}, max |split - unsplit| ${vsUnsplit.toExponential(2)}`);
        expect(vsUnsplit).toBeLessThanOrEqual(1e-5);
        if (golden) {
          const err = maxAbs(res.eps, golden.output);
          console.log(`${name} S=${S} ${partition}: max |split - golden| ${err.toExponential(2)}`);
          expect(err).toBeLessThanOrEqual(1e-4);
          for (const [k, ref] of golden.intermediates) {
            const got = res.intermediates.get(k);
            expect(got, `intermediate ${k}`).toBeDefined();
            expect(maxAbs(got!, ref), `intermediate ${k}`).toBeLessThanOrEqual(1e-4);
          }
        }
      });
    }
  });
}

// Golden a_cls_conv (depth 7: n = 3), weights read per segment from the safetensors file.
const gdir = GOLDEN_DIR;
const gcase = JSON.parse(readFileSync(join(gdir, 'case.json'), 'utf8'));
const gcfg = parseConfig(gcase.config);
const gIntermediates = new Map<string, Tensor>(
  Object.keys(gcase.intermediates).map((k) => [k, readNpy(join(gdir, gcase.intermediates[k].file))]),
);
describeSplits(
  'golden a_cls_conv',
  gcfg,
  (plan, intermediates) =>
    Engine.create({ config: gcfg, weightsPath: join(gdir, 'weights.safetensors'), plan, intermediates, threads: 1 }),
  () => ({
    x: readNpy(join(gdir, 'input_x.npy')) as Tensor<'float32'>,
    timesteps: readNpy(join(gdir, 'input_timesteps.npy')) as Tensor<'float32'>,
    y: readNpy(join(gdir, 'input_y.npy')) as Tensor<'int64'>,
  }),
  { output: readNpy(join(gdir, 'output.npy')), intermediates: gIntermediates },
);

// A small text-conditioned video config (depth 9: n = 4; F 4, pt 2; conv 3-D) with seeded in-memory weights.
const vcfg = parseConfig({
  img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 48, depth: 9, num_heads: 3, clip_dim: 16, num_clip_token: 4,
  num_frames: 4, temporal_patch_size: 2, mlp_time_embed: true, qkv_bias: true,
});
const vweights = new Map<string, Float32Array>();
[...expectedParams(vcfg)].forEach(([k, shape], i) => {
  const len = shape.reduce((a, b) => a * b, 1);
  const w = rand(1000 + i, len, k.endsWith('norm1.weight') || k.endsWith('norm2.weight') || k === 'norm.weight' ? 0.2 : 0.12);
  if (/norm\d?\.weight$/.test(k)) for (let j = 0; j < len; j++) w[j] += 1;
  vweights.set(k, w);
});
for (const frames of [4, 2]) {
  describeSplits(
    `video text F'=${frames}`,
    vcfg,
    (plan) => Engine.create({ config: vcfg, weights: vweights, plan, threads: 1 }),
    () => ({
      x: float32([2, 4, frames, 8, 8], rand(7, 2 * 4 * frames * 64, 1.5)),
      timesteps: new Float32Array([37.5, 912]),
      context: float32([2, 4, 16], rand(8, 2 * 4 * 16, 1)),
    }),
  );
}
