// Continuous-time sampling (--solver dpm-solver-fast) against the official DPM_Solver.sample of dpm_solver_pytorch.py
// as eval.py calls it, on a seeded small class-conditional U-ViT (tests/fixtures/continuous/make.py): the network is
// called at the same times, and x after every solver step is within 1e-4·max|ref| of the official one.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { Engine } from '../../gpu-backend/engine/engine.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { linearVP, logSnrGrid } from '../../gpu-backend/sampler/continuous.ts';
import { fastOrders } from '../../gpu-backend/sampler/dpmSolverPPFast.ts';
import { dpmSolverFastContinuous, guidedEps, nullClassLabels, sample } from '../../gpu-backend/sampler/index.ts';

const DIR = resolve(import.meta.dirname, '../fixtures/continuous');
const spec = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as {
  config: Record<string, unknown>;
  cases: Array<{ name: string; steps: number; scale: number }>;
};
const cfg = parseConfig(spec.config);
const z = readNpy(join(DIR, 'z_init.npy')) as Tensor<'float32'>;
const y = readNpy(join(DIR, 'y.npy')) as Tensor<'int64'>;

let engine: Engine | undefined;
afterAll(async () => engine?.release());

describe('linear VP schedule (NoiseScheduleVP("linear"))', () => {
  it('inverse_lambda inverts lambda, and the step orders sum to the NFE', () => {
    // (at t = 1e-4 the float32 round trip is off by ~3e-3: 1 − α² cancels, as in torch)
    for (const t of [0.01, 0.3, 0.999]) expect(Math.abs(linearVP.inverseLambda(linearVP.lambda(t)) - t) / t).toBeLessThan(1e-4);
    for (const n of [1, 2, 3, 6, 8, 10, 50]) expect(fastOrders(n).reduce((a, b) => a + b, 0)).toBe(n);
    expect(fastOrders(50)).toEqual([...new Array(16).fill(3), 2]);
    const g = logSnrGrid(4, 1, 1e-4);
    expect(g[0]).toBeCloseTo(1, 5);
    expect(g[4]).toBeCloseTo(1e-4, 5);
  });
});

describe.each(spec.cases)('dpm-solver-fast vs official DPM_Solver.sample: $name, guidance $scale', ({ name, steps, scale }) => {
  it('same network times, x after every step within 1e-4·max|ref|', async () => {
    engine ??= await Engine.create({ config: cfg, weightsPath: join(DIR, 'weights.safetensors'), threads: 1 });
    const e = engine;
    const times: number[] = [];
    const traj: Tensor<'float32'>[] = [];
    const epsFn = guidedEps({
      model: (inp) => e.forward(inp),
      cond: { y },
      uncond: { y: nullClassLabels(cfg.num_classes!, 2) },
      scale,
    });
    const x = await dpmSolverFastContinuous(epsFn, z, { steps, onStep: (_i, _n, t) => times.push(t), onUpdate: (_i, xi) => traj.push(xi) });
    const refTimes = Array.from(readNpy(join(DIR, `${name}.times.npy`)).data as Float32Array);
    expect(times.length).toBe(steps);
    for (let i = 0; i < steps; i++) expect(Math.abs(times[i] - refTimes[i]), `call ${i}: ${times[i]} vs ${refTimes[i]}`).toBeLessThanOrEqual(1e-6 * refTimes[i] + 1e-5);
    const ref = readNpy(join(DIR, `${name}.traj.npy`)) as Tensor<'float32'>;
    const per = z.data.length;
    expect(traj.length).toBe(ref.dims[0]);
    for (let k = 0; k < traj.length; k++) {
      const r = ref.data.subarray(k * per, (k + 1) * per);
      let err = 0;
      let mag = 0;
      for (let i = 0; i < per; i++) {
        err = Math.max(err, Math.abs(traj[k].data[i] - r[i]));
        mag = Math.max(mag, Math.abs(r[i]));
      }
      console.log(`${name} step ${k}: max|ref| ${mag.toFixed(3)}, max abs err ${err.toExponential(2)} (${(err / mag).toExponential(2)} relative)`);
      expect(err, `step ${k}`).toBeLessThanOrEqual(1e-4 * mag);
    }
    expect(x).toBe(traj[traj.length - 1]);
    // what `uvit sample --solver dpm-solver-fast` runs
    expect((await sample('dpm-solver-fast', epsFn, z, { steps })).data).toEqual(x.data);
  });
});
