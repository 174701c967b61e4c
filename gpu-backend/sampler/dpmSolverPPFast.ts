// DPM-Solver++ "fast", order 3, time-uniform, exactly as U-ViT's dpm_solver_pp.py `sample(method='fast')` with the
// official scripts' arguments (predict_x0=True, solver_type='dpm_solver', denoise=False); UVIT.md §5.3.
// Note this file's 'fast' uses a grid of steps+1 points (not K+1) and takes r1/r2 from the grid's lambdas.
import type { Tensor } from '../../shared/tensor.ts';
import { dataPredictor, type DataPredictor } from './dataPrediction.ts';
import { linComb } from './ops.ts';
import { defaultNoiseSchedule, linspaceF32, type NoiseScheduleVP } from './schedule.ts';
import type { EpsFn, SamplerOptions } from './types.ts';

const f32 = Math.fround;

/** The order of each step: K = steps//3+1; %3==0 -> [3]*(K-2)+[2,1]; ==1 -> [3]*(K-1)+[1]; ==2 -> [3]*(K-1)+[2]. */
export function fastOrders(steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  const K = Math.floor(steps / 3) + 1;
  const threes = (n: number) => new Array<number>(Math.max(0, n)).fill(3);
  if (steps % 3 === 0) return [...threes(K - 2), 2, 1];
  if (steps % 3 === 1) return [...threes(K - 1), 1];
  return [...threes(K - 1), 2];
}

/** time_uniform grid: torch.linspace(T, eps, steps+1) in float32 */
export function timeUniformGrid(steps: number, tStart: number, tEnd: number): Float32Array {
  return linspaceF32(tStart, tEnd, steps + 1);
}

export async function dpmSolverPPFast(
  epsFn: EpsFn,
  xT: Tensor<'float32'>,
  opts: SamplerOptions,
  ns: NoiseScheduleVP = defaultNoiseSchedule(),
): Promise<Tensor<'float32'>> {
  const { steps } = opts;
  const orders = fastOrders(steps);
  const grid = timeUniformGrid(steps, opts.tStart ?? ns.T, opts.tEnd ?? 1 / ns.totalN);
  const dp = dataPredictor(ns, epsFn, steps, opts.onStep);
  let x = xT;
  let i = 0;
  for (const order of orders) {
    const s = grid[i];
    const t = grid[i + order];
    const lamS = ns.marginalLambda(s);
    const h = ns.marginalLambda(t) - lamS;
    if (order === 1) {
      x = await firstUpdate(ns, dp, x, s, t);
    } else {
      const r1 = (ns.marginalLambda(grid[i + 1]) - lamS) / h;
      if (order === 2) {
        x = await secondUpdate(ns, dp, x, s, t, r1);
      } else {
        const r2 = (ns.marginalLambda(grid[i + 2]) - lamS) / h;
        x = await thirdUpdate(ns, dp, x, s, t, r1, r2);
      }
    }
    i += order;
  }
  if (dp.calls !== steps) throw new Error(`internal: dpmSolverPPFast made ${dp.calls} model calls, expected ${steps}`);
  return x;
}

interface Coefs {
  lam: number;
  alpha: number;
  sigma: number;
}

function coefs(ns: NoiseScheduleVP, t: number): Coefs {
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

/** DPM-Solver++-2 ('dpm_solver' form) with intermediate s1 = inverse_lambda(λs + r1 h) */
async function secondUpdate(
  ns: NoiseScheduleVP,
  dp: DataPredictor,
  x: Tensor<'float32'>,
  s: number,
  t: number,
  r1: number,
): Promise<Tensor<'float32'>> {
  const cs = coefs(ns, s);
  const ct = coefs(ns, t);
  const h = ct.lam - cs.lam;
  const s1 = f32(ns.inverseLambda(cs.lam + r1 * h));
  const c1 = coefs(ns, s1);
  const phi11 = Math.expm1(-r1 * h);
  const phi1 = Math.expm1(-h);
  const x0s = await dp.x0(x, s);
  const xs1 = linComb([c1.sigma / cs.sigma, x], [-c1.alpha * phi11, x0s]);
  const x0s1 = await dp.x0(xs1, s1);
  const a = ct.alpha * phi1;
  // x_t = (σt/σs) x − a x0_s − (0.5/r1) a (x0_s1 − x0_s)
  return linComb([ct.sigma / cs.sigma, x], [-a + (0.5 / r1) * a, x0s], [-(0.5 / r1) * a, x0s1]);
}

/** DPM-Solver++-3 ('dpm_solver' form) with s1, s2 from inverse_lambda; σ and α re-evaluated at s1, s2 */
async function thirdUpdate(
  ns: NoiseScheduleVP,
  dp: DataPredictor,
  x: Tensor<'float32'>,
  s: number,
  t: number,
  r1: number,
  r2: number,
): Promise<Tensor<'float32'>> {
  const cs = coefs(ns, s);
  const ct = coefs(ns, t);
  const h = ct.lam - cs.lam;
  const s1 = f32(ns.inverseLambda(cs.lam + r1 * h));
  const s2 = f32(ns.inverseLambda(cs.lam + r2 * h));
  const c1 = coefs(ns, s1);
  const c2 = coefs(ns, s2);
  const phi11 = Math.expm1(-r1 * h);
  const phi12 = Math.expm1(-r2 * h);
  const phi1 = Math.expm1(-h);
  const phi22 = phi12 / (r2 * h) + 1;
  const phi2 = phi1 / h + 1;

  const x0s = await dp.x0(x, s);
  const xs1 = linComb([c1.sigma / cs.sigma, x], [-c1.alpha * phi11, x0s]);
  const x0s1 = await dp.x0(xs1, s1);
  // x_s2 = (σs2/σs) x − αs2 φ12 x0_s + (r2/r1) αs2 φ22 (x0_s1 − x0_s)
  const b = (r2 / r1) * c2.alpha * phi22;
  const xs2 = linComb([c2.sigma / cs.sigma, x], [-c2.alpha * phi12 - b, x0s], [b, x0s1]);
  const x0s2 = await dp.x0(xs2, s2);
  // x_t = (σt/σs) x − αt φ1 x0_s + (1/r2) αt φ2 (x0_s2 − x0_s)
  const c = (1 / r2) * ct.alpha * phi2;
  return linComb([ct.sigma / cs.sigma, x], [-ct.alpha * phi1 - c, x0s], [c, x0s2]);
}
