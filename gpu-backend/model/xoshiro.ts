// xoshiro128** (Blackman & Vigna) and the SplitMix32 step that seeds it. Shared by the weight initialiser
// (model/initWeights.ts) and the driver's latent noise (driver/rng.ts); each documents its own seeding and
// normal sampler, which are part of their reproducibility contracts and stay separate.

/** One SplitMix32 output for state x (the state then advances by 0x9e3779b9). */
export function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Xoshiro128ss {
  // plain fields (not a typed array / #private) keep the hot loop fast
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** the four state words (any 32-bit values; an all-zero state, which xoshiro cannot leave, becomes s0 = 1) */
  constructor(s0: number, s1: number, s2: number, s3: number) {
    this.s0 = s0 | 0;
    this.s1 = s1 | 0;
    this.s2 = s2 | 0;
    this.s3 = s3 | 0;
    if (!(this.s0 | this.s1 | this.s2 | this.s3)) this.s0 = 1;
  }

  /** next uint32 */
  nextU32(): number {
    const m = Math.imul(this.s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return r;
  }
}
