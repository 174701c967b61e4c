// The driver's documented deterministic PRNG: the initial latent noise of a job is a pure function of its seed.
//
//   state  = 4 × uint32 from SplitMix32 applied to (seed_lo, seed_hi, 0x9e3779b9, 0x85ebca6b)   (seed = integer < 2^53)
//   uint32 = xoshiro128** (Blackman & Vigna)
//   normal = Box–Muller in float64 on two uint32 (u1 = (a + 1) / 2^32, u2 = b / 2^32), both outputs used:
//            z0 = r cos(2π u2), z1 = r sin(2π u2), r = sqrt(-2 ln u1); then rounded to float32.
// Values are filled in C order of the latent tensor [B, C, F, h, w]. Each job draws from its own generator, so what else
// is in flight never changes a job's noise. For batch item b of a job the seed is (seed + b).

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`rng: seed must be a non-negative safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    this.s0 = splitmix32(lo);
    this.s1 = splitmix32(hi ^ this.s0);
    this.s2 = splitmix32(0x9e3779b9 ^ this.s1);
    this.s3 = splitmix32(0x85ebca6b ^ this.s2);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** next uint32 (xoshiro128**) */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** fill with N(0,1) samples (Box–Muller, both outputs used) */
  fillNormal(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = (this.nextU32() + 1) / 4294967296; // (0, 1]
      const u2 = this.nextU32() / 4294967296; // [0, 1)
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** z_init for one job: `batch` items of shape `itemDims`, item b drawn from Rng(seed + b). */
export function initialNoise(seed: number, itemDims: readonly number[], batch = 1): Float32Array {
  let per = 1;
  for (const d of itemDims) per *= d;
  const out = new Float32Array(per * batch);
  for (let b = 0; b < batch; b++) new Rng(seed + b).fillNormal(out.subarray(b * per, (b + 1) * per));
  return out;
}
