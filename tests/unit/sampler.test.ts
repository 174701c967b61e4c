// Samplers vs an independent float64 re-derivation of docs/model.md §5 (samplerReference.ts: bisection inverse, product-form
// alphas_cumprod, float64 grid), vs values from a float32 port of the official code, plus analytic checks (Gaussian
// data has an exactly solvable probability-flow ODE).
import { describe, expect, it } from 'vitest';
import {
  defaultNoiseSchedule,
  dpmSolverPP2M,
  dpmSolverPPFast,
  fastOrders,
  multistepOrders,
  sample,
  type EpsFn,
} from '../../gpu-backend/sampler/index.ts';
import type { Tensor } from '../../shared/tensor.ts';
import { N, REF, ref2M, refFast, refInvLambda, refLambda, refLogAlpha, type RefEps } from './samplerReference.ts';

// ---------------------------------------------------------------- helpers
const f32t = (dims: number[], data: ArrayLike<number>): Tensor<'float32'> => ({
  dtype: 'float32',
  dims,
  data: Float32Array.from(data),
});
function randn(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}
/** a nonlinear, time-dependent per-element fake network */
const fakeEpsScalar = (x: number, tInput: number) => 0.8 * Math.sin(x * (1 + tInput / 1000)) + 0.1 * x + 0.05 * (tInput / 1000);
const fakeEps: EpsFn = async (x, tInput) => f32t(x.dims, x.data.map((v) => fakeEpsScalar(v, tInput)));
const fakeRef: RefEps = (x, tInput) => x.map((v) => fakeEpsScalar(v, tInput));
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ---------------------------------------------------------------- schedule
describe('NoiseScheduleVP (discrete, stable-diffusion betas)', () => {
  const ns = defaultNoiseSchedule();
  it('alpha at the grid ends: alpha(1) = sqrt(prod(1-beta)), alpha(1/N) = sqrt(1-beta_1)', () => {
    expect(ns.marginalAlpha(1)).toBeCloseTo(Math.sqrt(REF.acp), 6);
    expect(ns.marginalAlpha(1)).toBeCloseTo(0.068265, 5);
    expect(ns.marginalAlpha(1 / N)).toBeCloseTo(Math.sqrt(1 - 0.00085), 6);
    expect(ns.betas[0]).toBe(Math.fround(0.00085));
    expect(ns.betas[999]).toBe(Math.fround(0.012));
  });
  it('alpha^2 + sigma^2 = 1 and lambda = log(alpha/sigma), matching the reference, incl. linear extension', () => {
    for (const t of [0.0002, 0.0005, 0.001, 0.0123, 0.25, 0.5, 0.7777, 0.9001, 1, 1.003]) {
      expect(ns.marginalAlpha(t) ** 2 + ns.marginalStd(t) ** 2).toBeCloseTo(1, 12);
      expect(ns.marginalLambda(t)).toBeCloseTo(Math.log(ns.marginalAlpha(t) / ns.marginalStd(t)), 10);
      expect(Math.abs(ns.marginalLogMeanCoeff(t) - refLogAlpha(t))).toBeLessThan(2e-6 * Math.max(1, Math.abs(refLogAlpha(t))));
    }
  });
  it('inverse_lambda inverts lambda (and agrees with a bisection)', () => {
    for (const t of [0.001, 0.05, 0.3333, 0.5, 0.9001, 0.999, 1]) {
      const l = ns.marginalLambda(t);
      expect(ns.inverseLambda(l)).toBeCloseTo(t, 7);
      expect(ns.inverseLambda(l)).toBeCloseTo(refInvLambda(refLambda(t)), 5);
    }
  });
  it('t_d is the float32 linspace(1/N, 1, N)', () => {
    expect(ns.tDiscrete.length).toBe(1000);
    expect(ns.tDiscrete[0]).toBe(Math.fround(0.001));
    expect(ns.tDiscrete[999]).toBe(1);
    expect(ns.tDiscrete[499]).toBeCloseTo(0.5, 6);
  });
});

// ---------------------------------------------------------------- orders and call times
describe('DPM-Solver++ fast: order lists and model-call times', () => {
  it('order lists for steps 50/10/11/12 (and they sum to steps)', () => {
    expect(fastOrders(50)).toEqual([...Array(16).fill(3), 2]);
    expect(fastOrders(10)).toEqual([3, 3, 3, 1]);
    expect(fastOrders(11)).toEqual([3, 3, 3, 2]);
    expect(fastOrders(12)).toEqual([3, 3, 3, 2, 1]);
    for (let s = 1; s <= 60; s++) expect(fastOrders(s).reduce((a, b) => a + b, 0)).toBe(s);
    expect(() => fastOrders(0)).toThrow(/positive integer/);
  });
  it('steps=10 calls the model at 1000, 900.1, ..., 100.9 (float32)', async () => {
    const times: number[] = [];
    const steps: [number, number, number][] = [];
    await dpmSolverPPFast(
      async (x, t) => {
        times.push(t);
        return fakeEps(x, t);
      },
      f32t([1, 3], [0.3, -1, 2]),
      { steps: 10, onStep: (i, total, t) => steps.push([i, total, t]) },
    );
    const expected = [1000, 900.1, 800.2, 700.3, 600.4, 500.5, 400.6, 300.7, 200.8, 100.9];
    expect(times.length).toBe(10);
    times.forEach((t, i) => {
      expect(Math.abs(t - expected[i])).toBeLessThan(1e-3);
      expect(t).toBe(Math.fround(t));
    });
    expect(times[1]).toBe(900.0999755859375);
    expect(steps.map(([i]) => i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(steps.every(([, total]) => total === 10)).toBe(true);
    expect(steps.map(([, , t]) => t)).toEqual(times);
  });
  it('steps=50 makes 50 calls from 1000 down to ~20.98 (no final denoise)', async () => {
    const times: number[] = [];
    await dpmSolverPPFast(async (x, t) => (times.push(t), fakeEps(x, t)), f32t([1, 1], [1]), { steps: 50 });
    expect(times.length).toBe(50);
    expect(times[0]).toBe(1000);
    expect(times[49]).toBeCloseTo(1000 * (1 - (49 * 0.999) / 50), 2);
  });
});

// ---------------------------------------------------------------- vs the reference
describe('samplers agree with the independent float64 reference (1e-4 · max|ref|)', () => {
  const B = 2;
  const D = 24;
  const z = randn(B * D, 7);
  for (const steps of [1, 2, 3, 10, 11, 12, 50]) {
    it(`dpmpp-fast3 steps=${steps}`, async () => {
      const log: number[] = [];
      const ref = refFast(fakeRef, Float64Array.from(z), steps, log);
      const times: number[] = [];
      const got = await dpmSolverPPFast(async (x, t) => (times.push(t), fakeEps(x, t)), f32t([B, D], z), { steps });
      expect(got.dims).toEqual([B, D]);
      expect(maxAbsDiff(got.data, ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
      expect(times.length).toBe(log.length);
      times.forEach((t, i) => expect(Math.abs(t - log[i])).toBeLessThan(2e-3));
    });
    it(`dpmpp-2m steps=${steps}`, async () => {
      const log: number[] = [];
      const ref = ref2M(fakeRef, Float64Array.from(z), steps, log);
      const got = await sample('dpmpp-2m', fakeEps, f32t([B, D], z), { steps });
      expect(maxAbsDiff(got.data, ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    });
  }
});

// ---------------------------------------------------------------- vs a float32 port of the official code
// Expected values printed (dev time) by a line-by-line numpy float32 port of U-ViT's dpm_solver_pp.py
// (interpolate_fn, NoiseScheduleVP('discrete'), sample(method='fast', order=3, predict_x0=True)), with the eps
// below computed in float32: 0.8·sin(x·(1 + t/1000)) + 0.1·x + 0.05·t/1000.
describe('dpmpp-fast3 vs a float32 port of the official dpm_solver_pp.py', () => {
  const z = [1.5, -0.7, 0.2, 2.4, -1.9, 0.05, -3.1, 0.9];
  const expected: Record<number, number[]> = {
    10: [15.39713191986084, -0.21938490867614746, -0.013861186802387238, 28.5554256439209, -18.64533805847168, -0.030872317031025887, -34.57576370239258, 0.3556264638900757],
    11: [14.257548332214355, -0.24428801238536835, -0.008883398026227951, 24.217626571655273, -18.313879013061523, -0.03007555566728115, -30.313045501708984, 0.4004979431629181],
    12: [15.359728813171387, -0.21601945161819458, -0.008781461045145988, 23.663557052612305, -18.362407684326172, -0.028107985854148865, -33.02888488769531, 0.35270172357559204],
  };
  const f = Math.fround;
  const eps: EpsFn = async (x, t) => f32t(x.dims, x.data.map((v) => 0.8 * Math.sin(f(v * f(1 + t / 1000))) + 0.1 * v + 0.05 * (t / 1000)));
  for (const steps of [10, 11, 12]) {
    it(`steps=${steps} (orders ${fastOrders(steps).join(',')}) within 1e-5 · max|ref|`, async () => {
      const got = await dpmSolverPPFast(eps, f32t([2, 4], z), { steps });
      expect(maxAbsDiff(got.data, expected[steps])).toBeLessThanOrEqual(1e-5 * maxAbs(expected[steps]));
    });
  }
});

// ---------------------------------------------------------------- analytic checks
describe('analytic checks', () => {
  const ns = defaultNoiseSchedule();
  it('one order-1 step by hand: x_t = (σt/σs) x + αt(1 − e^{−h}) x0_s with eps = c·x', async () => {
    const c = 0.7;
    const x = 1.5;
    const got = await dpmSolverPPFast(async (v) => f32t(v.dims, v.data.map((e) => c * e)), f32t([1, 1], [x]), { steps: 1 });
    const aS = Math.sqrt(REF.acp); // alpha(1)
    const sS = Math.sqrt(1 - REF.acp);
    const aT = Math.sqrt(1 - 0.00085); // alpha(1/N)
    const sT = Math.sqrt(0.00085);
    const x0 = (x - sS * c * x) / aS;
    const h = Math.log(aT / sT) - Math.log(aS / sS);
    const want = (sT / sS) * x + aT * (1 - Math.exp(-h)) * x0;
    expect(Math.abs(got.data[0] - want)).toBeLessThan(1e-4 * Math.abs(want));
  });
  // data x0 ~ N(0, v I): eps*(x,t) = σ x / (α² v + σ²) exactly, and the probability-flow ODE scales x by std ratio.
  const v = 0.25;
  const gaussEps: EpsFn = async (x, tInput) => {
    const t = tInput / 1000;
    const a = ns.marginalAlpha(t);
    const s = ns.marginalStd(t);
    return f32t(x.dims, x.data.map((e) => (s * e) / (a * a * v + s * s)));
  };
  const std = (t: number) => Math.sqrt(ns.marginalAlpha(t) ** 2 * v + ns.marginalStd(t) ** 2);
  const z = randn(16, 3);
  const relErr = async (solver: 'dpmpp-fast3' | 'dpmpp-2m', steps: number, tEnd?: number) => {
    const exact = z.map((e) => (e * std(tEnd ?? 1 / N)) / std(1));
    const got = await sample(solver, gaussEps, f32t([2, 8], z), { steps, tEnd });
    return maxAbsDiff(got.data, exact) / maxAbs(exact);
  };
  it('fast3 solves the Gaussian PF-ODE: 50 steps to 1/N within 3%, 200 steps to t=0.1 within 2e-5', async () => {
    expect(await relErr('dpmpp-fast3', 50)).toBeLessThan(3e-2);
    expect(await relErr('dpmpp-fast3', 200, 0.1)).toBeLessThan(2e-5);
  });
  it('2M converges at second order on the Gaussian PF-ODE (error ratio ~4 per doubling)', async () => {
    const e200 = await relErr('dpmpp-2m', 200, 0.02);
    const e400 = await relErr('dpmpp-2m', 400, 0.02);
    expect(e200).toBeLessThan(1e-3);
    expect(e200 / e400).toBeGreaterThan(3);
    expect(e200 / e400).toBeLessThan(5);
  });
});

// ---------------------------------------------------------------- 2M specifics
describe('DPM-Solver++(2M)', () => {
  it('first step is order 1: with steps=1 it equals the fast solver (order list [1])', async () => {
    expect(multistepOrders(5)).toEqual([1, 2, 2, 2, 2]);
    const z = f32t([1, 4], [0.1, -0.2, 1.3, 2]);
    const a = await dpmSolverPP2M(fakeEps, z, { steps: 1 });
    const b = await dpmSolverPPFast(fakeEps, z, { steps: 1 });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(fastOrders(1)).toEqual([1]);
  });
  it('calls the model exactly steps times at the grid points (not after the last step)', async () => {
    const times: number[] = [];
    await dpmSolverPP2M(async (x, t) => (times.push(t), fakeEps(x, t)), f32t([1, 2], [1, 2]), { steps: 10 });
    expect(times).toEqual([1000, 900.0999755859375, 800.2000122070312, 700.2999877929688, 600.3999633789062,
      500.5000305175781, 400.5999755859375, 300.6999816894531, 200.8000030517578, 100.9000015258789]);
  });
});
