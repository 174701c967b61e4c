// DPM-Solver++ "fast", order 3, time-uniform, exactly as U-ViT's dpm_solver_pp.py `sample(method='fast')` with the
// official scripts' arguments (predict_x0=True, solver_type='dpm_solver', denoise=False); docs/model.md §5.3.
// Note this file's 'fast' uses a grid of steps+1 points (not K+1) and takes r1/r2 from the grid's lambdas.
import type { Tensor } from '../../shared/tensor.ts';
import type { DataPredictor } from './dataPrediction.ts';
import { linComb } from './ops.ts';
import { defaultNoiseSchedule, type NoiseScheduleVP } from './schedule.ts';
import { coefs, firstUpdate, runTimeUniform, type Coefs } from './timeUniform.ts';
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

export async function dpmSolverPPFast(
  epsFn: EpsFn,
  xT: Tensor<'float32'>,
  opts: SamplerOptions,
  ns: NoiseScheduleVP = defaultNoiseSchedule(),
): Promise<Tensor<'float32'>> {
  const orders = fastOrders(opts.steps);
  return runTimeUniform('dpmSolverPPFast', epsFn, opts, ns, async (grid, dp) => {
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
          x = await secondUpdate(step(ns, dp, x, s, t), r1);
        } else {
          const r2 = (ns.marginalLambda(grid[i + 2]) - lamS) / h;
          x = await thirdUpdate(step(ns, dp, x, s, t), r1, r2);
        }
      }
      i += order;
    }
    return x;
  });
}

/** One step s -> t: the predictor, the state at s and the schedule coefficients both ends share. */
interface Step {
  ns: NoiseScheduleVP;
  dp: DataPredictor;
  x: Tensor<'float32'>;
  s: number;
  cs: Coefs;
  ct: Coefs;
  /** λt − λs */
  h: number;
}

function step(ns: NoiseScheduleVP, dp: DataPredictor, x: Tensor<'float32'>, s: number, t: number): Step {
  const cs = coefs(ns, s);
  const ct = coefs(ns, t);
  return { ns, dp, x, s, cs, ct, h: ct.lam - cs.lam };
}

/**
 * The start the 2nd- and 3rd-order steps share: x0 at s, one DPM-Solver++-1 step to the intermediate
 * s1 = inverse_lambda(λs + r1 h) (σ and α re-evaluated at s1), and x0 there. Model calls: at s, then at s1.
 */
async function firstIntermediate({ ns, dp, x, s, cs, h }: Step, r1: number): Promise<{ x0s: Tensor<'float32'>; x0s1: Tensor<'float32'> }> {
  const s1 = f32(ns.inverseLambda(cs.lam + r1 * h));
  const c1 = coefs(ns, s1);
  const x0s = await dp.x0(x, s);
  const xs1 = linComb([c1.sigma / cs.sigma, x], [-c1.alpha * Math.expm1(-r1 * h), x0s]);
  return { x0s, x0s1: await dp.x0(xs1, s1) };
}

/** DPM-Solver++-2 ('dpm_solver' form) with intermediate s1 = inverse_lambda(λs + r1 h) */
async function secondUpdate(st: Step, r1: number): Promise<Tensor<'float32'>> {
  const { x, cs, ct, h } = st;
  const { x0s, x0s1 } = await firstIntermediate(st, r1);
  const a = ct.alpha * Math.expm1(-h);
  // x_t = (σt/σs) x − a x0_s − (0.5/r1) a (x0_s1 − x0_s)
  return linComb([ct.sigma / cs.sigma, x], [-a + (0.5 / r1) * a, x0s], [-(0.5 / r1) * a, x0s1]);
}

/** DPM-Solver++-3 ('dpm_solver' form) with s1, s2 from inverse_lambda; σ and α re-evaluated at s1, s2 */
async function thirdUpdate(st: Step, r1: number, r2: number): Promise<Tensor<'float32'>> {
  const { ns, dp, x, cs, ct, h } = st;
  const s2 = f32(ns.inverseLambda(cs.lam + r2 * h));
  const c2 = coefs(ns, s2);
  const phi12 = Math.expm1(-r2 * h);
  const phi1 = Math.expm1(-h);
  const phi22 = phi12 / (r2 * h) + 1;
  const phi2 = phi1 / h + 1;

  const { x0s, x0s1 } = await firstIntermediate(st, r1);
  // x_s2 = (σs2/σs) x − αs2 φ12 x0_s + (r2/r1) αs2 φ22 (x0_s1 − x0_s)
  const b = (r2 / r1) * c2.alpha * phi22;
  const xs2 = linComb([c2.sigma / cs.sigma, x], [-c2.alpha * phi12 - b, x0s], [b, x0s1]);
  const x0s2 = await dp.x0(xs2, s2);
  // x_t = (σt/σs) x − αt φ1 x0_s + (1/r2) αt φ2 (x0_s2 − x0_s)
  const c = (1 / r2) * ct.alpha * phi2;
  return linComb([ct.sigma / cs.sigma, x], [-ct.alpha * phi1 - c, x0s], [c, x0s2]);
}
