// The trained shapes model's decoder as an ONNX graph, built with the project's graph builder. It is FIXED (no
// weights): separable linear interpolation of the low-resolution RGB latent video up to the output size, then the
// inverse of the latent normalisation, frames = mean + std · latents, into [0, 1]. Half-pixel centres with edge
// clamping, i.e. torch's interpolate(mode='trilinear', align_corners=False), which is what the training data
// generator (train/world.py) assumes. Its time and space interpolation are shared with the learned shape decoder
// (shapeDecoder.ts).
import { GraphBuilder } from '../onnx/graph.ts';
import { DataType } from '../onnx/onnx.ts';

/**
 * Weights of output sample o from input samples at factor r (half-pixel, clamped): source position
 * s = (o + 0.5)/r − 0.5, between floor(s) and floor(s) + 1, clamped to [0, n − 1]. Returns [n·r, n] row-major.
 */
export function interpolationMatrix(n: number, r: number): Float32Array {
  const m = new Float32Array(n * r * n);
  for (let o = 0; o < n * r; o++) {
    const s = Math.max(0, (o + 0.5) / r - 0.5);
    const i0 = Math.min(Math.floor(s), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    const w1 = s - Math.floor(s);
    m[o * n + i0] += 1 - w1;
    m[o * n + i1] += w1;
  }
  return m;
}

export interface InterpolationDecoderSpec {
  /** latent channels (3 for the trained model: its latent is RGB) */
  channels: number;
  /** latent side h = w */
  size: number;
  temporal: number;
  spatial: number;
  /** the latent normalisation: latents = (rgb - mean) / std, rgb in [0, 1] */
  mean: number;
  std: number;
}

/**
 * Linear interpolation ×r along `axis` of x (rank `rank`), half-pixel centres with edge clamping, in a form free of
 * the axis length: x is edge-padded by one sample each side, and output sample r·k + j blends input samples k−1, k,
 * k+1 with the j-th row weights of the interpolation matrix. Returns [..., n, r, ...] (that axis split in two:
 * sample r·k + j at [k, j]); the caller reshapes it to what it needs.
 */
export function interpolateAxis(g: GraphBuilder, x: string, rank: number, axis: number, r: number): string {
  const pads = new Array<number>(2 * rank).fill(0);
  pads[axis] = pads[rank + axis] = 1;
  const padded = g.op('Pad', [x, g.i64(pads)], { mode: 'edge' });
  const shifted = [0, 1, 2].map((k) =>
    g.op('Slice', [padded, g.i64([k]), g.i64([k - 2 === 0 ? Number.MAX_SAFE_INTEGER : k - 2]), g.i64([axis])]));
  // phase j of sample k sits at k + (j + 0.5)/r − 0.5: between k−1 and k for the first half, k and k+1 after
  const phases: string[] = [];
  for (let j = 0; j < r; j++) {
    const d = (j + 0.5) / r - 0.5;
    const w = d < 0 ? [-d, 1 + d, 0] : [0, 1 - d, d];
    const terms = w.flatMap((wk, k) => (wk === 0 ? [] : [g.op('Mul', [shifted[k], g.scalar(wk)])]));
    const sum = terms.reduce((a, b) => g.op('Add', [a, b]));
    phases.push(g.op('Unsqueeze', [sum, g.i64([axis + 1])]));
  }
  return g.op('Concat', phases, { axis: axis + 1 });
}

/** x [..., h, h] → [..., s·h, s·h]: bilinear ×s (half-pixel, edge clamp) as two MatMuls by constant matrices. */
export function upsampleSquare(g: GraphBuilder, x: string, h: number, s: number): string {
  const A = g.f32('interp_rows', [h * s, h], interpolationMatrix(h, s));
  const At = g.f32('interp_cols', [h, h * s], transpose(interpolationMatrix(h, s), h * s, h));
  return g.op('MatMul', [g.op('MatMul', [A, x]), At]);
}

/**
 * latents [B, C, F, h, w] → frames [B, C, temporal·F, spatial·h, spatial·w] in [0, 1]; B and F dynamic. Time:
 * interpolateAxis; space: upsampleSquare.
 */
export function buildInterpolationDecoder(spec: InterpolationDecoderSpec): Uint8Array {
  const { channels: C, size: h, temporal: r, spatial: s } = spec;
  const g = new GraphBuilder('interpolation_decoder', 17);
  const z = g.input('latents', DataType.FLOAT, ['B', C, 'F', h, h]);
  // Every interpolation weight row sums to 1, so the affine map commutes with it: applied to the latent it touches
  // temporal·spatial² = 512× fewer values than on the frames.
  const rgb = g.op('Add', [g.op('Mul', [z, g.scalar(spec.std)]), g.scalar(spec.mean)]);
  const x = g.op('Reshape', [interpolateAxis(g, rgb, 5, 2, r), g.i64([0, 0, -1, h, h])]);
  g.output(upsampleSquare(g, x, h, s), 'frames', DataType.FLOAT, ['B', C, 'T', h * s, h * s]);
  return g.encode();
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}
