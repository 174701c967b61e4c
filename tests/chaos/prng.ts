// Seeded PRNG (mulberry32) for the fuzz suites: CHAOS_SEED=<n> reproduces a run; failures print the seed and case.
export class Prng {
  private s: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed;
  }

  /** uniform in [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

export function chaosSeed(): number {
  const s = process.env.CHAOS_SEED;
  return s !== undefined && /^\d+$/.test(s) ? Number(s) : 20261125;
}

/** How many fuzz cases of suite `name` (API, FRAME, STAGE): CHAOS_<NAME>_N, else `dflt` (small in `npm test`; `npm run test:chaos` sets larger counts). */
export function fuzzCount(name: 'API' | 'FRAME' | 'STAGE', dflt: number): number {
  const n = Number(process.env[`CHAOS_${name}_N`]);
  return Number.isInteger(n) && n > 0 ? n : dflt;
}
