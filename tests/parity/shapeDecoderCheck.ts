// The shape decoder's checks, shared by the parity, unit and integration tests: the built ONNX decoder against
// reference frames, a seeded ShapeDecoder tensor set, and a plain-loop float64 reference of train/decoder.py's
// ShapeDecoder.clip written apart from the graph code (its own interpolation weights and pixel shuffle, the U-ViT
// reference's convolution), so that a layout slip in the graph does not cancel out.
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../shared/tensor.ts';
import { fromOrtF32, openSession } from '../../gpu-backend/driver/ort.ts';
import { Rng } from '../../gpu-backend/driver/rng.ts';
import { buildShapeDecoder, type ShapeDecoderSpec } from '../../gpu-backend/driver/shapeDecoder.ts';
import { conv2dSame } from '../../gpu-backend/model/referenceOps.ts';
import { writeSafetensors, type WriteDType, type WriteTensor } from '../../gpu-backend/model/safetensors.ts';
import { maxAbsDiff } from './referenceUtil.ts';

/** the built decoder's frames for z: [B, 3, T, H, H] */
export async function runShapeDecoder(spec: ShapeDecoderSpec, z: Tensor<'float32'>): Promise<Tensor<'float32'>> {
  const s = await openSession(buildShapeDecoder(spec), { ep: 'cpu', device_id: 0, threads: 1 }, 'shape decoder');
  try {
    const out = await s.run({ latents: new ort.Tensor('float32', z.data, z.dims) });
    return fromOrtF32(out.frames, 'frames');
  } finally {
    await s.release();
  }
}

/** the output frames `keep` of clips [B, 3, T, H, W] (all when absent) */
export function pickFrames(x: Tensor<'float32'>, keep?: number[]): Tensor<'float32'> {
  const [B, C, T, H, W] = x.dims;
  const ks = keep ?? [...Array(T).keys()];
  const P = H * W;
  const data = new Float32Array(B * C * ks.length * P);
  for (let bc = 0; bc < B * C; bc++) {
    ks.forEach((t, i) => data.set(x.data.subarray((bc * T + t) * P, (bc * T + t + 1) * P), (bc * ks.length + i) * P));
  }
  return { dtype: 'float32', dims: [B, C, ks.length, H, W], data };
}

/**
 * The core parity check: max abs difference between the ONNX decoder built from `spec.weights` and `frames`, the
 * reference's output frames `keep` (train/parity.py keeps 0, 5, 10 and 15) for latents z.
 */
export async function shapeDecoderMaxAbs(spec: ShapeDecoderSpec, z: Tensor<'float32'>, frames: Tensor<'float32'>, keep?: number[]): Promise<number> {
  return maxAbsDiff(pickFrames(await runShapeDecoder(spec, z), keep), frames);
}

export interface SeededDecoder {
  channels: number;
  width: number;
  mid: number;
  spatial: number;
  seed: number;
  /** std of every tensor's N(0, std²) values (conv_out.* zero when `zeroOut`) */
  std?: number;
  zeroOut?: boolean;
  dtype?: WriteDType;
}

/** ShapeDecoder's state_dict, seeded: the names and shapes train/decoder.py's save_file writes */
export function seededDecoderTensors(o: SeededDecoder): Map<string, WriteTensor> {
  const rng = new Rng(o.seed);
  const m = new Map<string, WriteTensor>();
  const add = (name: string, shape: number[], zero = false) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (!zero) for (const [i, v] of rng.fillNormal(new Float32Array(data.length)).entries()) data[i] = v * (o.std ?? 0.2);
    m.set(name, { dtype: o.dtype ?? 'F32', shape, data });
  };
  const W = o.width;
  add('conv_in.weight', [W, o.channels, 3, 3]);
  add('conv_in.bias', [W]);
  for (let i = 0; i < o.mid; i++) {
    add(`conv_mid.${i}.weight`, [W, W, 3, 3]);
    add(`conv_mid.${i}.bias`, [W]);
  }
  add('conv_out.weight', [3 * o.spatial ** 2, W, 1, 1], o.zeroOut);
  add('conv_out.bias', [3 * o.spatial ** 2], o.zeroOut);
  return m;
}

export function writeSeededDecoder(path: string, o: SeededDecoder): Map<string, WriteTensor> {
  const m = seededDecoderTensors(o);
  writeSafetensors(path, m);
  return m;
}

/** half-pixel, edge-clamped linear interpolation: output sample o of n·r draws on (i0, 1 − w) and (i1, w) */
function taps(o: number, n: number, r: number): [number, number, number] {
  const s = Math.max(0, (o + 0.5) / r - 0.5);
  const i0 = Math.min(Math.floor(s), n - 1);
  return [i0, Math.min(i0 + 1, n - 1), s - Math.floor(s)];
}

/** train/decoder.py's ShapeDecoder.clip in plain loops: latents [B, C, F, h, h] → frames [B, 3, r·F, s·h, s·h] */
export function referenceShapeDecoder(t: Map<string, WriteTensor>, z: Tensor<'float32'>, o: { temporal: number; spatial: number; mean: number; std: number }): Tensor<'float32'> {
  const [B, C, F, h] = z.dims;
  const { temporal: r, spatial: s } = o;
  const T = F * r;
  const H = h * s;
  const P = h * h;
  const get = (n: string) => t.get(n)!;
  const W = get('conv_in.weight').shape[0];
  const mids = [...t.keys()].filter((n) => /^conv_mid\.\d+\.weight$/.test(n)).length;
  const out = new Float32Array(B * 3 * T * H * H);
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < T; f++) {
      const [i0, i1, wt] = taps(f, F, r);
      const x = new Float64Array(C * P);
      for (let c = 0; c < C; c++) {
        for (let i = 0; i < P; i++) {
          const at = (k: number) => z.data[((b * C + c) * F + k) * P + i];
          x[c * P + i] = (1 - wt) * at(i0) + wt * at(i1);
        }
      }
      let y = conv2dSame(x, 1, C, h, h, get('conv_in.weight').data, get('conv_in.bias').data, W, 3, 1).map((v) => Math.max(v, 0));
      for (let m = 0; m < mids; m++) {
        y = conv2dSame(y, 1, W, h, h, get(`conv_mid.${m}.weight`).data, get(`conv_mid.${m}.bias`).data, W, 3, 1).map((v) => Math.max(v, 0));
      }
      const res = conv2dSame(y, 1, W, h, h, get('conv_out.weight').data, get('conv_out.bias').data, 3 * s * s, 1, 0);
      for (let c = 0; c < 3; c++) {
        for (let Y = 0; Y < H; Y++) {
          const [y0, y1, wy] = taps(Y, h, s);
          for (let X = 0; X < H; X++) {
            const [x0, x1, wx] = taps(X, h, s);
            const px = (yy: number, xx: number) => o.mean + o.std * x[(c * h + yy) * h + xx];
            const base = (1 - wy) * ((1 - wx) * px(y0, x0) + wx * px(y0, x1)) + wy * ((1 - wx) * px(y1, x0) + wx * px(y1, x1));
            // pixel_shuffle: output (Y, X) of channel c is input channel c·s² + (Y mod s)·s + (X mod s) at (Y/s, X/s)
            const sub = c * s * s + (Y % s) * s + (X % s);
            out[(((b * 3 + c) * T + f) * H + Y) * H + X] = base + res[(sub * h + Math.floor(Y / s)) * h + Math.floor(X / s)];
          }
        }
      }
    }
  }
  return { dtype: 'float32', dims: [B, 3, T, H, H], data: out };
}
