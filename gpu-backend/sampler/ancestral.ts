// Ancestral sampling (DDPM; DDIM with eta = 1) on the time-uniform grid of the DPM-Solver++ samplers. From s to the next
// grid time t, with x0 = x0(x_s, s) and eps = (x_s − α_s·x0) / σ_s:
//   x_t = α_t·x0 + sqrt(σ_t² − c²)·eps + c·z,   c = (σ_t / σ_s)·sqrt(1 − α_s² / α_t²),   z ~ N(0, I)
// (DDIM's sigma with eta = 1), and no noise on the last step. Fresh noise at every step lets the sample correct the
// model's errors instead of following them, as an ODE solver must: on the shapes model a deterministic sampler turns the
// first faint guesses into several fragments, while this one keeps one object far more often (docs/training.md). It
// needs more steps than DPM-Solver++ (50 rather than 12) and a noise source, which the driver seeds from the job.
//
// Re-noising ('renoise') takes the same step with all of the noise fresh, c = σ_t:
//   x_t = α_t·x0 + σ_t·z
// (the multistep sampling of consistency models). With an exact data prediction it is not an exact sampler: it keeps
// only the model's clean-clip guess from step to step, and for Gaussian data it ends with a smaller spread than the
// data (tests/unit/sampler-ancestral.test.ts), a lower "temperature". On the shapes model that is what helps: the faint
// second objects the model guesses early are forgotten instead of kept, and motion is read right far more often.
import type { Tensor } from '../../shared/tensor.ts';
import { linComb, type Term } from './ops.ts';
import { defaultNoiseSchedule, type NoiseScheduleVP } from './schedule.ts';
import { coefs, runTimeUniform } from './timeUniform.ts';
import type { EpsFn, SamplerOptions } from './types.ts';

export type StochasticSolver = 'ancestral' | 'renoise';

export async function ancestral(
  epsFn: EpsFn,
  xT: Tensor<'float32'>,
  opts: SamplerOptions,
  ns: NoiseScheduleVP = defaultNoiseSchedule(),
  kind: StochasticSolver = 'ancestral',
): Promise<Tensor<'float32'>> {
  const { noise } = opts;
  if (!noise) throw new Error(`the ${kind} sampler needs a noise source (SamplerOptions.noise)`);
  return runTimeUniform(kind, epsFn, opts, ns, async (grid, dp) => {
    let x = xT;
    for (let step = 0; step < opts.steps; step++) {
      const cs = coefs(ns, grid[step]);
      const ct = coefs(ns, grid[step + 1]);
      const x0 = await dp.x0(x, grid[step]);
      const last = step === opts.steps - 1;
      const c = last
        ? 0
        : kind === 'renoise'
          ? ct.sigma
          : (ct.sigma / cs.sigma) * Math.sqrt(Math.max(0, 1 - (cs.alpha * cs.alpha) / (ct.alpha * ct.alpha)));
      // sqrt(σ_t² − c²)·eps with eps = (x − α_s·x0)/σ_s, folded into the coefficients of x and x0
      const k = Math.sqrt(Math.max(0, ct.sigma * ct.sigma - c * c)) / cs.sigma;
      const terms: Term[] = [[k, x], [ct.alpha - k * cs.alpha, x0]];
      if (!last) {
        const z = noise();
        if (z.length !== x.data.length) throw new Error(`${kind}: noise of ${z.length} values for a sample of ${x.data.length}`);
        terms.push([c, { dtype: 'float32', dims: [...x.dims], data: z }]);
      }
      x = linComb(...terms);
    }
    return x;
  });
}
