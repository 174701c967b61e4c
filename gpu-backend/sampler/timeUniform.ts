// What both DPM-Solver++ samplers (fast order 3, 2M) share: the time-uniform grid of steps+1 points, the run frame
// that makes exactly `steps` data predictions (checked), the schedule coefficients of a step, and DPM-Solver++-1.
import type { Tensor } from '../../shared/tensor.ts';
import { dataPredictor, type DataPredictor } from './dataPrediction.ts';
import { linComb } from './ops.ts';
import { linspaceF32, type NoiseScheduleVP } from './schedule.ts';
import type { EpsFn, SamplerOptions } from './types.ts';

/** time_uniform grid: torch.linspace(T, eps, steps+1) in float32 */
export function timeUniformGrid(steps: number, tStart: number, tEnd: number): Float32Array {
  return linspaceF32(tStart, tEnd, steps + 1);
}

/**
 * Runs `body` with the solver's grid (tStart default T, tEnd default 1/N) and a data predictor over `epsFn`, and
 * checks that it evaluated the model exactly `opts.steps` times (the NFE the caller asked for).
 */
export async function runTimeUniform(
  solver: string,
  epsFn: EpsFn,
  opts: SamplerOptions,
  ns: NoiseScheduleVP,
  body: (grid: Float32Array, dp: DataPredictor) => Promise<Tensor<'float32'>>,
): Promise<Tensor<'float32'>> {
  const { steps } = opts;
  const grid = timeUniformGrid(steps, opts.tStart ?? ns.T, opts.tEnd ?? 1 / ns.totalN);
  const dp = dataPredictor(ns, epsFn, steps, opts.onStep);
  const x = await body(grid, dp);
  if (dp.calls !== steps) throw new Error(`internal: ${solver} made ${dp.calls} model calls, expected ${steps}`);
  return x;
}

export interface Coefs {
  lam: number;
  alpha: number;
  sigma: number;
}

export function coefs(ns: NoiseScheduleVP, t: number): Coefs {
  return { lam: ns.marginalLambda(t), alpha: ns.marginalAlpha(t), sigma: ns.marginalStd(t) };
}

/** DPM-Solver++-1: x_t = (σt/σs) x + αt (1 − e^{−h}) x0_s */
export async function firstUpdate(
  ns: NoiseScheduleVP,
  dp: DataPredictor,
  x: Tensor<'float32'>,
  s: number,
  t: number,
  x0s?: Tensor<'float32'>,
): Promise<Tensor<'float32'>> {
  const cs = coefs(ns, s);
  const ct = coefs(ns, t);
  const h = ct.lam - cs.lam;
  const x0 = x0s ?? (await dp.x0(x, s));
  return linComb([ct.sigma / cs.sigma, x], [ct.alpha * -Math.expm1(-h), x0]);
}
