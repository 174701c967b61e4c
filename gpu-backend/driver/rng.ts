// The driver's documented deterministic PRNG: the initial latent noise of a job is a pure function of its seed.
//
//   state  = 4 × uint32 from SplitMix32 applied to (seed_lo, seed_hi, 0x9e3779b9, 0x85ebca6b)   (seed = integer < 2^53)
//   uint32 = xoshiro128** (Blackman & Vigna)
//   normal = Box–Muller in float64 on two uint32 (u1 = (a + 1) / 2^32, u2 = b / 2^32), both outputs used:
//            z0 = r cos(2π u2), z1 = r sin(2π u2), r = sqrt(-2 ln u1); then rounded to float32.
// Values are filled in C order of the latent tensor [B, C, F, h, w]. Each job draws from its own generator, so what else
// is in flight never changes a job's noise. For batch item b of a job the seed is (seed + b). A sampler that adds noise
// at every step (ancestral) draws it from the same generators, continuing after the initial noise, in call order.
import { splitmix32, Xoshiro128ss } from '../model/xoshiro.ts';

export class Rng extends Xoshiro128ss {
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`rng: seed must be a non-negative safe integer, got ${seed}`);
    const s0 = splitmix32(seed >>> 0);
    const s1 = splitmix32((Math.floor(seed / 2 ** 32) >>> 0) ^ s0);
    const s2 = splitmix32(0x9e3779b9 ^ s1);
    super(s0, s1, s2, splitmix32(0x85ebca6b ^ s2));
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

/** One job's noise: `initial` is z_init (`batch` items of shape `itemDims`, item b drawn from Rng(seed + b)); each
 * `next()` is a fresh array of the same size from the same generators, for a sampler's step noise. */
export function jobNoise(seed: number, itemDims: readonly number[], batch = 1): { initial: Float32Array; next: () => Float32Array } {
  let per = 1;
  for (const d of itemDims) per *= d;
  const rngs = Array.from({ length: batch }, (_, b) => new Rng(seed + b));
  const draw = () => {
    const out = new Float32Array(per * batch);
    rngs.forEach((r, b) => r.fillNormal(out.subarray(b * per, (b + 1) * per)));
    return out;
  };
  return { initial: draw(), next: draw };
}
