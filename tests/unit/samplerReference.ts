// Test-only float64 re-derivation of docs/model.md §5 (schedule, DPM-Solver++ fast and 2M), written independently of
// gpu-backend/sampler: product-form alphas_cumprod, linear-scan interpolation, bisection for inverse_lambda,
// float64 grids. Used by sampler.test.ts.

export const N = 1000;
function refTables() {
  const a = Math.sqrt(0.00085);
  const b = Math.sqrt(0.012);
  const logAlpha: number[] = [];
  let acp = 1;
  for (let i = 0; i < N; i++) {
    const beta = (a + ((b - a) * i) / (N - 1)) ** 2;
    acp *= 1 - beta;
    logAlpha.push(0.5 * Math.log(acp));
  }
  const t = Array.from({ length: N }, (_, i) => (i + 1) / N);
  return { logAlpha, t, acp };
}
export const REF = refTables();
export function refLogAlpha(t: number): number {
  // linear scan, outermost segments extended
  const { t: ts, logAlpha: la } = REF;
  let k = 0;
  while (k < N - 2 && t > ts[k + 1]) k++;
  return la[k] + ((la[k + 1] - la[k]) * (t - ts[k])) / (ts[k + 1] - ts[k]);
}
export const refAlpha = (t: number) => Math.exp(refLogAlpha(t));
export const refSigma = (t: number) => Math.sqrt(1 - refAlpha(t) ** 2);
export const refLambda = (t: number) => Math.log(refAlpha(t) / refSigma(t));
export function refInvLambda(l: number): number {
  // lambda is strictly decreasing in t: bisection on a bracket wider than [1/N, 1]
  let lo = 0;
  let hi = 1.01;
  for (let i = 0; i < 200; i++) {
    const m = 0.5 * (lo + hi);
    if (refLambda(m) > l) lo = m;
    else hi = m;
  }
  return 0.5 * (lo + hi);
}

export type Vec = Float64Array;
export type RefEps = (x: Vec, tInput: number) => Vec;
const comb = (...terms: [number, Vec][]) => terms[0][1].map((_, i) => terms.reduce((s, [c, v]) => s + c * v[i], 0));

function refX0(eps: RefEps, x: Vec, t: number, log: number[]): Vec {
  log.push(t * N);
  const e = eps(x, t * N);
  return x.map((xi, i) => (xi - refSigma(t) * e[i]) / refAlpha(t));
}

/** DPM-Solver++ singlestep 'fast' (data prediction, dpm_solver form) written from §5.3 */
export function refFast(eps: RefEps, xT: Vec, steps: number, log: number[] = []): Vec {
  const K = Math.floor(steps / 3) + 1;
  const orders =
    steps % 3 === 0 ? [...Array(K - 2).fill(3), 2, 1] : steps % 3 === 1 ? [...Array(K - 1).fill(3), 1] : [...Array(K - 1).fill(3), 2];
  const grid = Array.from({ length: steps + 1 }, (_, i) => 1 + ((1 / N - 1) * i) / steps);
  let x = xT;
  let i = 0;
  for (const order of orders) {
    const s = grid[i];
    const t = grid[i + order];
    const h = refLambda(t) - refLambda(s);
    const x0s = refX0(eps, x, s, log);
    if (order === 1) {
      x = comb([refSigma(t) / refSigma(s), x], [refAlpha(t) * (1 - Math.exp(-h)), x0s]);
    } else {
      const r1 = (refLambda(grid[i + 1]) - refLambda(s)) / h;
      const s1 = refInvLambda(refLambda(s) + r1 * h);
      const xs1 = comb([refSigma(s1) / refSigma(s), x], [-refAlpha(s1) * Math.expm1(-r1 * h), x0s]);
      const x0s1 = refX0(eps, xs1, s1, log);
      const phi1 = Math.expm1(-h);
      if (order === 2) {
        const d = x0s1.map((v, k) => v - x0s[k]);
        x = comb([refSigma(t) / refSigma(s), x], [-refAlpha(t) * phi1, x0s], [(-0.5 / r1) * refAlpha(t) * phi1, d]);
      } else {
        const r2 = (refLambda(grid[i + 2]) - refLambda(s)) / h;
        const s2 = refInvLambda(refLambda(s) + r2 * h);
        const phi12 = Math.expm1(-r2 * h);
        const phi22 = phi12 / (r2 * h) + 1;
        const d1 = x0s1.map((v, k) => v - x0s[k]);
        const xs2 = comb(
          [refSigma(s2) / refSigma(s), x],
          [-refAlpha(s2) * phi12, x0s],
          [(r2 / r1) * refAlpha(s2) * phi22, d1],
        );
        const x0s2 = refX0(eps, xs2, s2, log);
        const d2 = x0s2.map((v, k) => v - x0s[k]);
        const phi2 = phi1 / h + 1;
        x = comb([refSigma(t) / refSigma(s), x], [-refAlpha(t) * phi1, x0s], [(1 / r2) * refAlpha(t) * phi2, d2]);
      }
    }
    i += order;
  }
  return x;
}

/** DPM-Solver++(2M), first step order 1, written from §5.4 */
export function ref2M(eps: RefEps, xT: Vec, steps: number, log: number[] = []): Vec {
  const grid = Array.from({ length: steps + 1 }, (_, i) => 1 + ((1 / N - 1) * i) / steps);
  let x = xT;
  const hist: { t: number; x0: Vec }[] = [];
  for (let k = 0; k < steps; k++) {
    const s = grid[k];
    const t = grid[k + 1];
    hist.push({ t: s, x0: refX0(eps, x, s, log) });
    const p0 = hist[hist.length - 1];
    const h = refLambda(t) - refLambda(s);
    const em1 = Math.exp(-h) - 1;
    if (k === 0) {
      x = comb([refSigma(t) / refSigma(s), x], [-refAlpha(t) * em1, p0.x0]);
    } else {
      const p1 = hist[hist.length - 2];
      const h0 = refLambda(p0.t) - refLambda(p1.t);
      const D1 = p0.x0.map((v, j) => (h / h0) * (v - p1.x0[j]));
      x = comb([refSigma(t) / refSigma(s), x], [-refAlpha(t) * em1, p0.x0], [-0.5 * refAlpha(t) * em1, D1]);
    }
  }
  return x;
}
