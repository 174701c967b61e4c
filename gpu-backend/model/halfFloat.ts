// Half-precision conversions (IEEE binary16 and bfloat16), round-to-nearest-even like torch's .half()/.bfloat16(),
// for the F16/BF16 tensors of safetensors files (read and written by safetensors.ts).

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const v = h[i];
    const sign = v & 0x8000 ? -1 : 1;
    const e = (v >> 10) & 0x1f;
    const m = v & 0x3ff;
    if (e === 0) out[i] = sign * m * 2 ** -24;
    else if (e === 31) out[i] = m ? NaN : sign * Infinity;
    else out[i] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

export function f32ToF16(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    f32buf[0] = f[i];
    const x = u32buf[0];
    const sign = (x >>> 16) & 0x8000;
    const e = (x >>> 23) & 0xff;
    let m = x & 0x7fffff;
    if (e === 0xff) {
      out[i] = sign | 0x7c00 | (m ? 0x200 : 0);
      continue;
    }
    let he = e - 127 + 15;
    if (he >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (he <= 0) {
      // subnormal half (or zero): shift the full mantissa, round to nearest even
      if (he < -10) {
        out[i] = sign;
        continue;
      }
      m |= 0x800000;
      const shift = 14 - he;
      let hm = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && hm & 1)) hm++;
      out[i] = sign | hm;
      continue;
    }
    let hm = m >>> 13;
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && hm & 1)) {
      hm++;
      if (hm === 0x400) {
        hm = 0;
        he++;
        if (he >= 31) {
          out[i] = sign | 0x7c00;
          continue;
        }
      }
    }
    out[i] = sign | (he << 10) | hm;
  }
  return out;
}

export function bf16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) u[i] = h[i] << 16;
  return out;
}

export function f32ToBf16(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    f32buf[0] = f[i];
    const x = u32buf[0];
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      out[i] = (x >>> 16) | 0x40; // quiet NaN
      continue;
    }
    out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
