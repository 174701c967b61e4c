// v- and x0-predicting networks through the eps samplers (sampler/prediction.ts): written as a v or an x0 network, a
// known eps network must give back the same eps at every call, and so the same sample from both DPM-Solver++ solvers;
// the group config accepts `prediction: v` or `x0` only with a discrete-schedule solver.
import { describe, expect, it } from 'vitest';
import { defaultNoiseSchedule, epsFrom, sample, type EpsFn, type SolverName } from '../../gpu-backend/sampler/index.ts';
import { GroupConfigSchema } from '../../gpu-backend/serve/groupConfig.ts';
import type { Tensor } from '../../shared/tensor.ts';

const ns = defaultNoiseSchedule();
const f32t = (dims: number[], data: ArrayLike<number>): Tensor<'float32'> => ({ dtype: 'float32', dims, data: Float32Array.from(data) });
const epsNet: EpsFn = async (x, tInput) => f32t(x.dims, x.data.map((v) => 0.7 * Math.sin(v * (1 + tInput / 900)) + 0.2 * v));
/** the same network as a v predictor: v = alpha·eps − sigma·x0 with x0 = (x − sigma·eps) / alpha */
const vNet: EpsFn = async (x, tInput) => {
  const t = tInput / ns.totalN;
  const [a, s] = [ns.marginalAlpha(t), ns.marginalStd(t)];
  const eps = await epsNet(x, tInput);
  return f32t(x.dims, eps.data.map((e, i) => a * e - (s * (x.data[i] - s * e)) / a));
};
/** the same network as an x0 predictor: x0 = (x − sigma·eps) / alpha */
const x0Net: EpsFn = async (x, tInput) => {
  const t = tInput / ns.totalN;
  const [a, s] = [ns.marginalAlpha(t), ns.marginalStd(t)];
  const eps = await epsNet(x, tInput);
  return f32t(x.dims, eps.data.map((e, i) => (x.data[i] - s * e) / a));
};
const nets = { v: vNet, x0: x0Net } as const;
const maxAbs = (a: Tensor<'float32'>, b: Tensor<'float32'>) => a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i])), 0);
const x = f32t([1, 2, 3, 4], Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) * 1.5));

describe('v and x0 prediction', () => {
  it('eps is passed through unchanged', () => {
    expect(epsFrom('eps', ns, epsNet)).toBe(epsNet);
  });

  it('eps = alpha·v + sigma·x and eps = (x − alpha·x0) / sigma recover the eps network at high, middle and low noise', async () => {
    for (const [prediction, net] of Object.entries(nets)) {
      for (const tInput of [999.0009765625, 500.5, 1.0]) {
        const d = maxAbs(await epsFrom(prediction as keyof typeof nets, ns, net)(x, tInput), await epsNet(x, tInput));
        expect(d, `${prediction} at t_input ${tInput}`).toBeLessThan(2e-5);
      }
    }
  });

  it('a sample from the v or x0 network equals the sample from the eps network (dpmpp-fast3, dpmpp-2m)', async () => {
    for (const solver of ['dpmpp-fast3', 'dpmpp-2m'] as SolverName[]) {
      const a = await sample(solver, epsNet, x, { steps: 12 });
      expect(maxAbs(a, x), solver).toBeGreaterThan(0.1);
      for (const [prediction, net] of Object.entries(nets)) {
        const b = await sample(solver, epsFrom(prediction as keyof typeof nets, ns, net), x, { steps: 12 });
        expect(maxAbs(a, b), `${prediction} ${solver}`).toBeLessThan(1e-4);
      }
    }
  });

  it('an output of the wrong shape is refused with what was expected', async () => {
    const bad: EpsFn = async () => f32t([1, 2], [0, 0]);
    await expect(epsFrom('v', ns, bad)(x, 500)).rejects.toThrow(/v prediction at t_input=500: expected shape \[1,2,3,4\], got \[1,2\]/);
    await expect(epsFrom('x0', ns, bad)(x, 500)).rejects.toThrow(/x0 prediction at t_input=500: expected shape/);
  });

  it('the group config takes prediction v or x0 with the discrete solvers only', () => {
    const sampler = (s: object) => GroupConfigSchema.shape.sampler.safeParse(s);
    expect(sampler({ solver: 'dpmpp-2m', prediction: 'v' }).success).toBe(true);
    expect(sampler({ solver: 'dpmpp-fast3', prediction: 'x0' }).success).toBe(true);
    expect(sampler({}).data?.prediction).toBe('eps');
    for (const prediction of ['v', 'x0']) {
      const r = sampler({ solver: 'dpm-solver-fast', prediction });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0].message).toMatch(/prediction v or x0 needs a discrete-schedule solver/);
    }
  });
});
