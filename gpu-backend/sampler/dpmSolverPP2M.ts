// DPM-Solver++(2M) multistep ('dpm_solver' form), time-uniform grid of steps+1 points, with the dpm_solver_pp.py bug
// (UnboundLocalError on `timesteps`) fixed: docs/model.md §5.4. The first step is order 1, then each step uses the last two
// data predictions; the model is evaluated `steps` times and not after the last step.
import type { Tensor } from '../../shared/tensor.ts';
import { linComb } from './ops.ts';
import { defaultNoiseSchedule, type NoiseScheduleVP } from './schedule.ts';
import { firstUpdate, runTimeUniform } from './timeUniform.ts';
import type { EpsFn, SamplerOptions } from './types.ts';

/** the order used at each of the `steps` updates: [1, 2, 2, ...] */
export function multistepOrders(steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps }, (_, k) => (k === 0 ? 1 : 2));
}

export async function dpmSolverPP2M(
  epsFn: EpsFn,
  xT: Tensor<'float32'>,
  opts: SamplerOptions,
  ns: NoiseScheduleVP = defaultNoiseSchedule(),
): Promise<Tensor<'float32'>> {
  const { steps } = opts;
  multistepOrders(steps); // validates steps
  return runTimeUniform('dpmSolverPP2M', epsFn, opts, ns, async (grid, dp) => {
    let x = xT;
    // history of (t, x0(t)); prev1 is the older one
    let tPrev0 = grid[0];
    let x0Prev0 = await dp.x0(x, tPrev0);
    x = await firstUpdate(ns, dp, x, tPrev0, grid[1], x0Prev0);
    for (let step = 2; step <= steps; step++) {
      const tPrev1 = tPrev0;
      const x0Prev1 = x0Prev0;
      tPrev0 = grid[step - 1];
      x0Prev0 = await dp.x0(x, tPrev0);
      x = secondMultistepUpdate(ns, x, x0Prev1, x0Prev0, tPrev1, tPrev0, grid[step]);
    }
    return x;
  });
}

/** x_t = (σt/σp0) x − αt(e^{−h}−1) x0_p0 − 0.5 αt(e^{−h}−1) D1, D1 = (h/h0)(x0_p0 − x0_p1) */
function secondMultistepUpdate(
  ns: NoiseScheduleVP,
  x: Tensor<'float32'>,
  x0p1: Tensor<'float32'>,
  x0p0: Tensor<'float32'>,
  tp1: number,
  tp0: number,
  t: number,
): Tensor<'float32'> {
  const lp1 = ns.marginalLambda(tp1);
  const lp0 = ns.marginalLambda(tp0);
  const lt = ns.marginalLambda(t);
  const h0 = lp0 - lp1;
  const h = lt - lp0;
  const a = ns.marginalAlpha(t) * Math.expm1(-h);
  const d = -0.5 * a * (h / h0); // coefficient of (x0_p0 − x0_p1)
  return linComb([ns.marginalStd(t) / ns.marginalStd(tp0), x], [-a + d, x0p0], [-d, x0p1]);
}
