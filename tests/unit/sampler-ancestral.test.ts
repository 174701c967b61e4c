// The ancestral sampler (sampler/ancestral.ts) and the driver's noise stream it draws from (driver/rng.ts jobNoise).
// For Gaussian data N(0, s²) the exact noise prediction is known, eps(x, t) = σ_t·x / (α_t²·s² + σ_t²), so a correct
// ancestral sampler must turn N(0, I) into samples of standard deviation s as its steps get fine (with coarse steps
// it falls short: 0.46 s at 50 steps, 0.49 s at 200, 0.496 s at 999); a wrong step variance would not.
import { describe, expect, it } from 'vitest';
import { jobNoise, Rng } from '../../gpu-backend/driver/rng.ts';
import { ancestral, defaultNoiseSchedule, sample, timeUniformGrid, type EpsFn } from '../../gpu-backend/sampler/index.ts';
import type { Tensor } from '../../shared/tensor.ts';

const ns = defaultNoiseSchedule();
const S = 0.5;
const gaussianEps: EpsFn = async (x, tInput) => {
  const t = tInput / ns.totalN;
  const [a, s] = [ns.marginalAlpha(t), ns.marginalStd(t)];
  const k = s / (a * a * S * S + s * s);
  return { dtype: 'float32', dims: [...x.dims], data: x.data.map((v) => k * v) };
};
const std = (d: Float32Array) => {
  let m = 0, v = 0;
  for (const x of d) m += x;
  m /= d.length;
  for (const x of d) v += (x - m) ** 2;
  return Math.sqrt(v / d.length);
};

describe('ancestral sampler', () => {
  it('turns N(0, I) into samples of the data distribution N(0, s²) (exact eps of Gaussian data)', async () => {
    const n = 10_000;
    const noise = jobNoise(3, [n]);
    const xT: Tensor<'float32'> = { dtype: 'float32', dims: [1, n], data: noise.initial };
    const x = await sample('ancestral', gaussianEps, xT, { steps: 999, noise: noise.next });
    expect(std(x.data)).toBeGreaterThan(S * 0.97);
    expect(std(x.data)).toBeLessThan(S * 1.03);
    // dropping the per-step noise (keeping the same deterministic part) shrinks the samples well below s
    const noNoise = await sample('ancestral', gaussianEps, xT, { steps: 999, noise: () => new Float32Array(n) });
    expect(std(noNoise.data)).toBeLessThan(S * 0.5);
  });

  it('is a pure function of the seeded noise stream; another stream gives another sample', async () => {
    const run = async (seed: number) => {
      const noise = jobNoise(seed, [2, 8]);
      return (await ancestral(gaussianEps, { dtype: 'float32', dims: [1, 2, 8], data: noise.initial }, { steps: 10, noise: noise.next })).data;
    };
    expect(Array.from(await run(5))).toEqual(Array.from(await run(5)));
    expect(Array.from(await run(5))).not.toEqual(Array.from(await run(6)));
  });

  it('refuses to run without a noise source, or with noise of the wrong size', async () => {
    const xT: Tensor<'float32'> = { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) };
    await expect(ancestral(gaussianEps, xT, { steps: 3 })).rejects.toThrow(/needs a noise source/);
    await expect(ancestral(gaussianEps, xT, { steps: 3, noise: () => new Float32Array(3) })).rejects.toThrow(
      /noise of 3 values for a sample of 4/,
    );
  });
});

describe('re-noising sampler', () => {
  // For Gaussian data the clean-clip prediction is x0 = m_s·x with m_s = α_s·s² / (α_s²·s² + σ_s²), so the spread of
  // x_t = α_t·x0 + σ_t·z follows v_t = α_t²·m_s²·v_s + σ_t² from v = 1 at the start, and the last step returns m·x.
  const predictedStd = (steps: number) => {
    const grid = timeUniformGrid(steps, ns.T, 1 / ns.totalN);
    const m = (t: number) => (ns.marginalAlpha(t) * S * S) / (ns.marginalAlpha(t) ** 2 * S * S + ns.marginalStd(t) ** 2);
    let v = 1;
    for (let k = 0; k < steps - 1; k++) v = (ns.marginalAlpha(grid[k + 1]) * m(grid[k])) ** 2 * v + ns.marginalStd(grid[k + 1]) ** 2;
    return Math.sqrt(m(grid[steps - 1]) ** 2 * v);
  };

  it('noises each clean-clip prediction afresh: the spread the recurrence predicts, smaller than the data\'s', async () => {
    const n = 10_000;
    for (const steps of [50, 200]) {
      const noise = jobNoise(4, [n]);
      const x = await sample('renoise', gaussianEps, { dtype: 'float32', dims: [1, n], data: noise.initial }, { steps, noise: noise.next });
      const want = predictedStd(steps);
      expect(std(x.data)).toBeGreaterThan(want * 0.97);
      expect(std(x.data)).toBeLessThan(want * 1.03);
      // a lower temperature than the exact ancestral sampler (0.46 s at 50 steps), whatever the step count
      expect(want).toBeLessThan(S * 0.85);
    }
  });

  it('needs a noise source like the ancestral sampler', async () => {
    const xT: Tensor<'float32'> = { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) };
    await expect(sample('renoise', gaussianEps, xT, { steps: 3 })).rejects.toThrow(/renoise sampler needs a noise source/);
  });
});

describe('jobNoise', () => {
  it('draws z_init, then continues each item\'s generator (item b from Rng(seed + b))', () => {
    const noise = jobNoise(7, [4, 8, 8], 2);
    const second = noise.next();
    for (const b of [0, 1]) {
      const r = new Rng(7 + b);
      expect(Array.from(noise.initial.subarray(b * 256, (b + 1) * 256))).toEqual(Array.from(r.fillNormal(new Float32Array(256))));
      expect(Array.from(second.subarray(b * 256, (b + 1) * 256))).toEqual(Array.from(r.fillNormal(new Float32Array(256))));
    }
  });
});
