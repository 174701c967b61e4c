// Float64 building blocks of the reference forward: plain loops written from docs/model.md §3, no cleverness.
// Activations are row-major Float64Arrays; weights are the official float32 tensors (Linear W is [out, in]).

/** erf to ~1e-15: Maclaurin series for |x| < 2.5, Lentz continued fraction for erfc beyond */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax; // x^(2n+1)/n!
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  if (ax > 7) return x < 0 ? -1 : 1; // erfc(7) ~ 4e-23
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = ax;
  let C = ax;
  let D = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    D = ax + a * D;
    D = D === 0 ? tiny : D;
    C = ax + a / C;
    C = C === 0 ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** nn.GELU() default: exact erf form */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** y[r, o] = sum_i x[r, i] W[o, i] + b[o]  (PyTorch Linear, W stored [out, in]) */
export function linear(x: Float64Array, rows: number, inDim: number, W: Float32Array, outDim: number,
  b?: Float32Array): Float64Array {
  if (W.length !== outDim * inDim) throw new Error(`linear: weight has ${W.length} elements, expected ${outDim}x${inDim}`);
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i] * W[o * inDim + i];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

/** nn.LayerNorm(D): biased variance, eps inside the sqrt */
export function layerNorm(x: Float64Array, rows: number, D: number, g: Float32Array, b: Float32Array,
  eps = 1e-5): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[r * D + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[r * D + i] - mean) ** 2;
    v /= D;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < D; i++) y[r * D + i] = (x[r * D + i] - mean) * inv * g[i] + b[i];
  }
  return y;
}

/**
 * Multi-head self-attention over x [B, T, D] (docs/model.md §3.3): qkv columns are (K=3, H, Dh); scale Dh^-0.5; no mask.
 */
export function attention(x: Float64Array, B: number, T: number, D: number, H: number, Wqkv: Float32Array,
  bqkv: Float32Array | undefined, Wproj: Float32Array, bproj: Float32Array): Float64Array {
  const Dh = D / H;
  const qkv = linear(x, B * T, D, Wqkv, 3 * D, bqkv); // [B, T, 3D]
  const o = new Float64Array(B * T * D);
  const scale = Dh ** -0.5;
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const qOff = (b * T + i) * 3 * D + 0 * D + h * Dh;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          const kOff = (b * T + j) * 3 * D + 1 * D + h * Dh;
          let s = 0;
          for (let e = 0; e < Dh; e++) s += qkv[qOff + e] * qkv[kOff + e];
          scores[j] = s * scale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j < T; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        for (let e = 0; e < Dh; e++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += scores[j] * qkv[(b * T + j) * 3 * D + 2 * D + h * Dh + e];
          o[(b * T + i) * D + h * Dh + e] = acc / sum; // heads concatenated in head order
        }
      }
    }
  }
  return linear(o, B * T, D, Wproj, D, bproj);
}

/**
 * timestep_embedding(t, D) of docs/model.md §3.2: freqs_i = exp(-ln(10000) i / half), i < half = D//2;
 * row = [cos(t freqs), sin(t freqs)] (COS FIRST), plus a zero column when D is odd. Returns [B, D] row-major.
 * precision 'float32' (default) follows the official code literally: freqs and args are rounded to float32 like
 * torch does (arange float32, times float32(-ln 10000), / half, exp; t * freqs), then cos/sin in float64. That matches
 * the golden time token to ~1e-6 (torch's own float32 exp is off by 1 ulp in places). 'float64' keeps everything in
 * float64, which moves args near t=1000 by up to ~6e-5 rad (the time token by up to ~3e-5 at t=500).
 */
export function timestepEmbedding(t: readonly number[], D: number,
  precision: 'float32' | 'float64' = 'float32'): Float64Array {
  const half = Math.floor(D / 2);
  const r = precision === 'float32' ? Math.fround : (v: number) => v;
  const out = new Float64Array(t.length * D);
  for (let b = 0; b < t.length; b++) {
    for (let i = 0; i < half; i++) {
      const freq = r(Math.exp(r(r(r(-Math.log(10000)) * i) / half)));
      const arg = r(r(t[b]) * freq);
      out[b * D + i] = Math.cos(arg);
      out[b * D + half + i] = Math.sin(arg);
    }
  }
  return out;
}

/** 2-D conv, kernel k, stride 1, zero padding pad, with bias: x [B, Ci, Hh, Ww], W [Co, Ci, k, k] */
export function conv2dSame(x: Float64Array, B: number, Ci: number, Hh: number, Ww: number, W: Float32Array,
  bias: Float32Array, Co: number, k: number, pad: number): Float64Array {
  // one frame and a temporal kernel of 1: W [Co, Ci, k, k] is W [Co, Ci, 1, k, k] in memory, same summation order
  return conv3d(x, B, Ci, 1, Hh, Ww, W, bias, Co, 1, 0, k, pad);
}

/** 3-D conv, kernel k (all three axes), stride 1, zero padding pad, with bias: x [B, Ci, Ff, Hh, Ww] */
export function conv3dSame(x: Float64Array, B: number, Ci: number, Ff: number, Hh: number, Ww: number,
  W: Float32Array, bias: Float32Array, Co: number, k: number, pad: number): Float64Array {
  return conv3d(x, B, Ci, Ff, Hh, Ww, W, bias, Co, k, pad, k, pad);
}

/** 3-D conv, stride 1, zero padding, with bias: temporal kernel kT / padding padT, spatial kernel k / padding pad. */
function conv3d(x: Float64Array, B: number, Ci: number, Ff: number, Hh: number, Ww: number, W: Float32Array,
  bias: Float32Array, Co: number, kT: number, padT: number, k: number, pad: number): Float64Array {
  const y = new Float64Array(B * Co * Ff * Hh * Ww);
  for (let b = 0; b < B; b++) {
    for (let co = 0; co < Co; co++) {
      for (let f = 0; f < Ff; f++) {
        for (let r = 0; r < Hh; r++) {
          for (let c = 0; c < Ww; c++) {
            let s = bias[co];
            for (let ci = 0; ci < Ci; ci++) {
              for (let kt = 0; kt < kT; kt++) {
                const ff = f + kt - padT;
                if (ff < 0 || ff >= Ff) continue;
                for (let kh = 0; kh < k; kh++) {
                  const rr = r + kh - pad;
                  if (rr < 0 || rr >= Hh) continue;
                  for (let kw = 0; kw < k; kw++) {
                    const cc = c + kw - pad;
                    if (cc < 0 || cc >= Ww) continue;
                    s += W[(((co * Ci + ci) * kT + kt) * k + kh) * k + kw] *
                      x[(((b * Ci + ci) * Ff + ff) * Hh + rr) * Ww + cc];
                  }
                }
              }
            }
            y[(((b * Co + co) * Ff + f) * Hh + r) * Ww + c] = s;
          }
        }
      }
    }
  }
  return y;
}
