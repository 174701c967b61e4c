// The ancestral sampler (sampler/ancestral.ts) and the driver's noise stream it draws from (driver/rng.ts jobNoise).
// For Gaussian data N(0, s²) the exact noise prediction is known, eps(x, t) = σ_t·x / (α_t²·s² + σ_t²), so a correct
// ancestral sampler must turn N(0, I) into samples of standard deviation s as its steps get fine (with coarse steps
// it falls short: 0.46 s at 50 steps, 0.49 s at 200, 0.496 s at 999); a wrong step variance would not.
import { describe, expect, it } from 'vitest';
import { jobNoise, Rng } from '../../gpu-backend/driver/rng.ts';
import { ancestral, defaultNoiseSchedule, sample, type EpsFn } from '../../gpu-backend/sampler/index.ts';
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
