// Discrete-time VP noise schedule of U-ViT's dpm_solver_pp.py (docs/model.md §5.2):
// NoiseScheduleVP(schedule='discrete', betas=float32(stable_diffusion_beta_schedule())).
// The tables (betas, log_alpha_d, t_d) are float32 values exactly as torch builds them; everything computed from
// them (interpolation, alpha, sigma, lambda) is evaluated in float64, which is at least as accurate as torch's float32.

const f32 = Math.fround;

/** numpy.linspace(start, stop, num) in float64 (arange * step + start, last point set to stop). */
export function linspaceF64(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

/**
 * torch.linspace(start, end, steps) with the default dtype float32, emulating ATen's CPU kernel:
 * float32 step, the first half counted up from start, the second half counted down from end.
 */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < half ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1)));
  }
  return out;
}

/** U-ViT's stable_diffusion_beta_schedule: linspace(sqrt(0.00085), sqrt(0.012), 1000) squared (float64), as float32. */
export function stableDiffusionBetas(linearStart = 0.00085, linearEnd = 0.012, n = 1000): Float32Array {
  const lin = linspaceF64(Math.sqrt(linearStart), Math.sqrt(linearEnd), n);
  const betas = new Float32Array(n);
  for (let i = 0; i < n; i++) betas[i] = lin[i] * lin[i];
  return betas;
}

/**
 * Piecewise-linear interpolation through the knots (xp ascending), extended linearly beyond both ends by the outermost
 * segments, as dpm_solver_pp.interpolate_fn does.
 */
export function interpLinearExtended(x: number, xp: ArrayLike<number>, yp: ArrayLike<number>): number {
  const k = xp.length;
  let lo: number;
  if (x <= xp[0]) lo = 0;
  else if (x >= xp[k - 1]) lo = k - 2;
  else {
    // binary search for xp[lo] <= x < xp[lo+1]
    let a = 0;
    let b = k - 1;
    while (b - a > 1) {
      const m = (a + b) >> 1;
      if (xp[m] <= x) a = m;
      else b = m;
    }
    lo = a;
  }
  const x0 = xp[lo];
  const x1 = xp[lo + 1];
  const y0 = yp[lo];
  const y1 = yp[lo + 1];
  return y0 + ((x - x0) * (y1 - y0)) / (x1 - x0);
}

export class NoiseScheduleVP {
  /** number of discrete steps N (1000) */
  readonly totalN: number;
  readonly T = 1.0;
  readonly betas: Float32Array;
  /** t_d = linspace(1/N, 1, N), float32, ascending */
  readonly tDiscrete: Float32Array;
  /** log_alpha_d = 0.5 * cumsum(log(1 - betas)), float32, descending */
  readonly logAlphaDiscrete: Float32Array;
  // flipped copies for inverse_lambda (x must ascend)
  private readonly logAlphaAsc: Float32Array;
  private readonly tForLogAlphaAsc: Float32Array;

  constructor(betas: Float32Array = stableDiffusionBetas()) {
    const n = betas.length;
    if (n < 2) throw new Error(`NoiseScheduleVP needs at least 2 betas, got ${n}`);
    this.totalN = n;
    this.betas = betas;
    // torch: log(1 - betas) in float32, cumsum accumulates in double on CPU and stores float32; 0.5 * is exact.
    this.logAlphaDiscrete = new Float32Array(n);
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += f32(Math.log(f32(1 - betas[i])));
      this.logAlphaDiscrete[i] = 0.5 * f32(acc);
    }
    this.tDiscrete = linspaceF32(1 / n, 1, n);
    this.logAlphaAsc = this.logAlphaDiscrete.slice().reverse();
    this.tForLogAlphaAsc = this.tDiscrete.slice().reverse();
  }

  marginalLogMeanCoeff(t: number): number {
    return interpLinearExtended(t, this.tDiscrete, this.logAlphaDiscrete);
  }

  marginalAlpha(t: number): number {
    return Math.exp(this.marginalLogMeanCoeff(t));
  }

  marginalStd(t: number): number {
    return Math.sqrt(1 - Math.exp(2 * this.marginalLogMeanCoeff(t)));
  }

  marginalLambda(t: number): number {
    const la = this.marginalLogMeanCoeff(t);
    return la - 0.5 * Math.log(1 - Math.exp(2 * la));
  }

  /** t with marginalLambda(t) = lambda: log_alpha = -0.5*logaddexp(0, -2 lambda), then interp on the flipped tables */
  inverseLambda(lambda: number): number {
    const logAlpha = -0.5 * logAddExp(0, -2 * lambda);
    return interpLinearExtended(logAlpha, this.logAlphaAsc, this.tForLogAlphaAsc);
  }
}

export function logAddExp(a: number, b: number): number {
  const m = Math.max(a, b);
  if (m === -Infinity) return -Infinity;
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

let defaultSchedule: NoiseScheduleVP | undefined;
/** the schedule every official discrete script uses (betas of stable_diffusion_beta_schedule, N = 1000) */
export function defaultNoiseSchedule(): NoiseScheduleVP {
  defaultSchedule ??= new NoiseScheduleVP();
  return defaultSchedule;
}
