// Continuous-time sampling of the official eval.py / eval_ldm.py (docs/model.md §5.6): the linear VP SDE (beta 0.1 -> 20,
// sde.VPSDE) as dpm_solver_pytorch.NoiseScheduleVP('linear'), the network called at t·999 (sde.ScoreModel with
// model_wrapper(time_input_type='0')), and DPM_Solver.sample(steps, eps=1e-4, adaptive_step_size=False,
// fast_version=True): noise-prediction DPM-Solver-3/2/1 on a grid uniform in logSNR.
//
// The schedule is evaluated with float32 rounding after every operation, as torch does on the float32 tensors it
// holds: near t = 1e-4, 1 − exp(2·log α) cancels to ~1e-5 and float64 would move λ (hence the grid and the network
// times) by ~1e-3 away from what the official code computes.
import type { Tensor } from '../../shared/tensor.ts';
import { fastOrders } from './dpmSolverPPFast.ts';
import { linComb } from './ops.ts';
import { linspaceF32 } from './schedule.ts';
import type { EpsFn, SamplerOptions } from './types.ts';

const f = Math.fround;
const BETA_0 = 0.1;
const BETA_1 = 20;
/** the network's time input is t·999 (sde.ScoreModel.predict) */
const TIME_SCALE = 999;

/** NoiseScheduleVP(schedule='linear') of dpm_solver_pytorch.py, in float32 arithmetic. */
export const linearVP = {
  T: 1,
  /** log α_t = −0.25 t² (β1 − β0) − 0.5 t β0 */
  logMeanCoeff(t: number): number {
    const a = f(f(-0.25 * f(t * t)) * f(BETA_1 - BETA_0));
    return f(a - f(f(0.5 * t) * f(BETA_0)));
  },
  std(t: number): number {
    return f(Math.sqrt(f(1 - f(Math.exp(f(2 * this.logMeanCoeff(t)))))));
  },
  lambda(t: number): number {
    const lmc = this.logMeanCoeff(t);
    return f(lmc - f(0.5 * f(Math.log(f(1 - f(Math.exp(f(2 * lmc))))))));
  },
  /** closed form: t = 2(β1−β0)·logaddexp(−2λ, 0) / (sqrt(β0² + tmp) + β0) / (β1 − β0) */
  inverseLambda(lambda: number): number {
    const tmp = f(f(2 * (BETA_1 - BETA_0)) * logAddExp0(f(-2 * lambda)));
    const delta = f(f(BETA_0 ** 2) + tmp);
    return f(f(tmp / f(f(Math.sqrt(delta)) + f(BETA_0))) / f(BETA_1 - BETA_0));
  },
};

/** torch.logaddexp(a, 0) in float32: max + log1p(exp(−|a|)) */
function logAddExp0(a: number): number {
  return f(Math.max(a, 0) + f(Math.log1p(f(Math.exp(f(-Math.abs(a)))))));
}

/** The K+1 times uniform in λ between T and eps (get_time_steps('logSNR')). */
export function logSnrGrid(K: number, tT: number, t0: number): Float32Array {
  const lams = linspaceF32(linearVP.lambda(f(tT)), linearVP.lambda(f(t0)), K + 1);
  return lams.map((l) => linearVP.inverseLambda(l));
}

export interface ContinuousOptions extends SamplerOptions {
  /** end time of the sampling (the official eval scripts: 1e-4) */
  eps?: number;
  /** called with x after each solver step (for trajectory checks) */
  onUpdate?: (step: number, x: Tensor<'float32'>) => void;
}

/**
 * DPM_Solver.sample(x, steps, eps=1e-4, adaptive_step_size=False, fast_version=True) on a noise-prediction model:
 * `epsFn(x, t·999)` is called exactly `steps` times. tStart/tEnd of SamplerOptions are not used: the official code
 * starts at T = 1 and ends at `eps`.
 */
export async function dpmSolverFastContinuous(epsFn: EpsFn, xT: Tensor<'float32'>, opts: ContinuousOptions): Promise<Tensor<'float32'>> {
  const orders = fastOrders(opts.steps); // DPM-Solver-fast's order list, the same rule as dpm_solver_pp.py's
  const grid = logSnrGrid(orders.length, linearVP.T, opts.eps ?? 1e-4);
  let calls = 0;
  const noise = async (x: Tensor<'float32'>, t: number): Promise<Tensor<'float32'>> => {
    const tInput = f(t * TIME_SCALE);
    const e = await epsFn(x, tInput);
    opts.onStep?.(calls, opts.steps, tInput);
    calls++;
    return e;
  };
  let x = xT;
  for (let i = 0; i < orders.length; i++) {
    x = await update(noise, x, grid[i], grid[i + 1], orders[i]);
    opts.onUpdate?.(i, x);
  }
  if (calls !== opts.steps) throw new Error(`internal: dpm-solver-fast made ${calls} model calls, expected ${opts.steps}`);
  return x;
}

type Noise = (x: Tensor<'float32'>, t: number) => Promise<Tensor<'float32'>>;

/** dpm_solver_{first,second,third}_update with the official r1 = 1/2 (order 2), r1 = 1/3, r2 = 2/3 (order 3) */
async function update(noise: Noise, x: Tensor<'float32'>, s: number, t: number, order: number): Promise<Tensor<'float32'>> {
  const ns = linearVP;
  const lamS = ns.lambda(s);
  const h = f(ns.lambda(t) - lamS);
  const las = ns.logMeanCoeff(s);
  const ratio = (u: number) => f(Math.exp(f(ns.logMeanCoeff(u) - las))); // α_u / α_s
  const sigT = ns.std(t);
  const phi1 = f(Math.expm1(h));
  const noiseS = await noise(x, s);
  // x_t = (α_t/α_s) x − σ_t φ1 ε_s − corr·(ε_other − ε_s)
  const finish = (corr: number, other: Tensor<'float32'>) =>
    linComb([ratio(t), x], [-f(sigT * phi1) + corr, noiseS], [-corr, other]);
  // x_{s1} = (α_s1/α_s) x − σ_s1 expm1(r h) ε_s
  const stepTo = (r: number) => {
    const rh = f(h * f(r));
    const s1 = ns.inverseLambda(f(lamS + rh));
    return { s1, rh, a: ratio(s1), sig: ns.std(s1), phi: f(Math.expm1(rh)) };
  };
  if (order === 1) return linComb([ratio(t), x], [-f(sigT * phi1), noiseS]);
  if (order === 2) {
    const p = stepTo(0.5);
    const noiseS1 = await noise(linComb([p.a, x], [-f(p.sig * p.phi), noiseS]), p.s1);
    return finish(f(1 * f(sigT * phi1)), noiseS1); // (0.5 / r1) = 1
  }
  if (order !== 3) throw new Error(`solver order must be 1, 2 or 3, got ${order}`);
  const p1 = stepTo(1 / 3);
  const p2 = stepTo(2 / 3);
  const phi22 = f(f(p2.phi / p2.rh) - 1);
  const phi2 = f(f(phi1 / h) - 1);
  const noiseS1 = await noise(linComb([p1.a, x], [-f(p1.sig * p1.phi), noiseS]), p1.s1);
  const c2 = f(2 * f(p2.sig * phi22)); // r2 / r1 = 2
  const xS2 = linComb([p2.a, x], [-f(p2.sig * p2.phi) + c2, noiseS], [-c2, noiseS1]);
  const noiseS2 = await noise(xS2, p2.s1);
  return finish(f(1.5 * f(sigT * phi2)), noiseS2); // 1 / r2 = 1.5
}
