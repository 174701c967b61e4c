// Ancestral sampling (DDPM; DDIM with eta = 1) on the time-uniform grid of the DPM-Solver++ samplers. From s to the next
// grid time t, with x0 = x0(x_s, s) and eps = (x_s − α_s·x0) / σ_s:
//   x_t = α_t·x0 + sqrt(σ_t² − c²)·eps + c·z,   c = (σ_t / σ_s)·sqrt(1 − α_s² / α_t²),   z ~ N(0, I)
// (DDIM's sigma with eta = 1), and no noise on the last step. Fresh noise at every step lets the sample correct the
// model's errors instead of following them, as an ODE solver must: on the shapes model a deterministic sampler turns the
// first faint guesses into several fragments, while this one keeps one object far more often (docs/training.md). It
// needs more steps than DPM-Solver++ (50 rather than 12) and a noise source, which the driver seeds from the job.
import type { Tensor } from '../../shared/tensor.ts';
import { linComb, type Term } from './ops.ts';
import { defaultNoiseSchedule, type NoiseScheduleVP } from './schedule.ts';
import { coefs, runTimeUniform } from './timeUniform.ts';
import type { EpsFn, SamplerOptions } from './types.ts';

export async function ancestral(
  epsFn: EpsFn,
  xT: Tensor<'float32'>,
  opts: SamplerOptions,
  ns: NoiseScheduleVP = defaultNoiseSchedule(),
): Promise<Tensor<'float32'>> {
  const { noise } = opts;
  if (!noise) throw new Error('the ancestral sampler needs a noise source (SamplerOptions.noise)');
  return runTimeUniform('ancestral', epsFn, opts, ns, async (grid, dp) => {
    let x = xT;
    for (let step = 0; step < opts.steps; step++) {
      const cs = coefs(ns, grid[step]);
      const ct = coefs(ns, grid[step + 1]);
      const x0 = await dp.x0(x, grid[step]);
      const last = step === opts.steps - 1;
      const c = last ? 0 : (ct.sigma / cs.sigma) * Math.sqrt(Math.max(0, 1 - (cs.alpha * cs.alpha) / (ct.alpha * ct.alpha)));
      // sqrt(σ_t² − c²)·eps with eps = (x − α_s·x0)/σ_s, folded into the coefficients of x and x0
      const k = Math.sqrt(Math.max(0, ct.sigma * ct.sigma - c * c)) / cs.sigma;
      const terms: Term[] = [[k, x], [ct.alpha - k * cs.alpha, x0]];
      if (!last) {
        const z = noise();
        if (z.length !== x.data.length) throw new Error(`ancestral: noise of ${z.length} values for a sample of ${x.data.length}`);
        terms.push([c, { dtype: 'float32', dims: [...x.dims], data: z }]);
      }
      x = linComb(...terms);
    }
    return x;
  });
}
