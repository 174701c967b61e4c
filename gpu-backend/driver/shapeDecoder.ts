// The learned shape decoder (train/decoder.py, ShapeDecoder) as an ONNX graph, built with the project's graph builder
// from its committed tensors. It reads RGB then one mask channel per shape: the latent's first `reads` channels (the
// rest, if any, are for the U-ViT alone: the motion channels). Time is interpolated linearly as the
// fixed decoder does (interpolationDecoder.ts); then each frame is the fixed decoder's picture plus a learned
// correction:
//   frame = bilinear_s(mean + std · z[0:3]) + DepthToSpace_s(conv_out(relu(conv_mid…(relu(conv_in(z))))))
// conv_in and conv_mid are 3×3 with zero padding, conv_out 1×1 to 3·s² channels; DepthToSpace mode CRD is torch's
// pixel_shuffle. The output is not clamped: the driver clamps when it quantises (decoder.ts).
import { GraphBuilder } from '../onnx/graph.ts';
import { DataType } from '../onnx/onnx.ts';
import { SafetensorsFile } from '../model/safetensors.ts';
import { type InterpolationDecoderSpec, interpolateAxis, upsampleSquare } from './interpolationDecoder.ts';

/** channels: RGB then the masks; mean and std normalise the RGB channels */
export interface ShapeDecoderSpec extends InterpolationDecoderSpec {
  /** safetensors with ShapeDecoder's state_dict: conv_in, conv_mid.0 … conv_mid.{M−1}, conv_out (weight and bias) */
  weights: string;
  /** the latent channels it reads, the first ones (default all `channels`) */
  reads?: number;
}

export interface Conv {
  name: string;
  /** [out, in, k, k] */
  dims: number[];
  weight: Float32Array;
  bias: Float32Array;
}

/** ShapeDecoder's convolutions in order (conv_in, conv_mid.*, conv_out), float32. */
export interface ShapeDecoderWeights {
  /** W, the hidden channels */
  width: number;
  convs: Conv[];
}

const MID = /^conv_mid\.(\d+)\.(weight|bias)$/;

/**
 * Reads and checks the decoder's tensors: exactly the names of a ShapeDecoder with M conv_mid layers, F32 or F16, and
 * the shapes that fit `channels` latent channels and `spatial`² output pixels per latent pixel. W and M come from the
 * file; every error names the tensor.
 */
export function readShapeDecoderWeights(path: string, channels: number, spatial: number): ShapeDecoderWeights {
  const where = `shape decoder weights ${path}`;
  const st = SafetensorsFile.open(path);
  try {
    if (!st.has('conv_in.weight')) throw new Error(`${where}: no tensor "conv_in.weight"`);
    const inShape = st.info('conv_in.weight').shape;
    const W = inShape[0];
    if (inShape.length !== 4 || !(W >= 1)) {
      throw new Error(`${where}: "conv_in.weight" is [${inShape.join(',')}], expected [W,${channels},3,3] (in_chans ${channels})`);
    }
    let M = 0;
    for (const n of st.names) {
      const m = MID.exec(n);
      if (m) M = Math.max(M, Number(m[1]) + 1);
    }
    const layers: [string, number[]][] = [['conv_in', [W, channels, 3, 3]]];
    for (let i = 0; i < M; i++) layers.push([`conv_mid.${i}`, [W, W, 3, 3]]);
    layers.push(['conv_out', [3 * spatial * spatial, W, 1, 1]]);
    const want = new Map(layers.flatMap(([n, d]) => [[`${n}.weight`, d], [`${n}.bias`, [d[0]]]] as [string, number[]][]));
    for (const n of st.names) {
      if (!want.has(n)) throw new Error(`${where}: unexpected tensor "${n}" (a ShapeDecoder of train/decoder.py has only conv_in, conv_mid.<i> and conv_out weights and biases)`);
    }
    const read = (name: string): Float32Array => {
      if (!st.has(name)) throw new Error(`${where}: no tensor "${name}"`);
      const { dtype, shape } = st.info(name);
      const d = want.get(name)!;
      if (dtype !== 'F32' && dtype !== 'F16') throw new Error(`${where}: "${name}" has dtype ${dtype}, expected F32 or F16`);
      if (shape.length !== d.length || shape.some((x, i) => x !== d[i])) {
        throw new Error(`${where}: "${name}" is [${shape.join(',')}], expected [${d.join(',')}] (in_chans ${channels}, width ${W}, spatial ${spatial})`);
      }
      return st.readFloat32(name);
    };
    const convs = layers.map(([name, dims]) => ({ name, dims, weight: read(`${name}.weight`), bias: read(`${name}.bias`) }));
    return { width: W, convs };
  } finally {
    st.close();
  }
}

/**
 * latents [B, C, F, h, h] → frames [B, 3, temporal·F, spatial·h, spatial·h]; B and F dynamic. The frames are made as
 * one batch [B·T, C, h, h]: the latents go frame-major first, [B, F, C, h, h], so that the time interpolation's
 * [B, F, temporal, C, h, h] is that batch as it lies.
 */
export function buildShapeDecoder(spec: ShapeDecoderSpec): Uint8Array {
  const { channels: C, size: h, temporal: r, spatial: s } = spec;
  const R = spec.reads ?? C;
  if (C < 3) throw new Error(`the shape decoder takes RGB + mask latents: in_chans must be at least 3, got ${C}`);
  if (!Number.isInteger(R) || R < 3 || R > C) throw new Error(`the shape decoder reads 3 to in_chans (${C}) latent channels, got ${R}`);
  const { convs } = readShapeDecoderWeights(spec.weights, R, s);
  const H = h * s;
  const g = new GraphBuilder('shape_decoder', 17);
  const z = g.input('latents', DataType.FLOAT, ['B', C, 'F', h, h]);
  // the channels it does not read are dropped before anything is computed on them
  const zr = R < C ? g.op('Slice', [z, g.i64([0]), g.i64([R]), g.i64([1])]) : z;
  const zf = g.op('Transpose', [zr], { perm: [0, 2, 1, 3, 4] });
  const x = g.op('Reshape', [interpolateAxis(g, zf, 5, 1, r), g.i64([-1, R, h, h])]);
  const rgb = g.op('Slice', [x, g.i64([0]), g.i64([3]), g.i64([1])]);
  const base = upsampleSquare(g, g.op('Add', [g.op('Mul', [rgb, g.scalar(spec.std)]), g.scalar(spec.mean)]), h, s);
  let y = x;
  for (const [i, c] of convs.entries()) {
    const k = c.dims[2];
    const p = (k - 1) / 2;
    y = g.op('Conv', [y, g.f32(`${c.name}.weight`, c.dims, c.weight), g.f32(`${c.name}.bias`, [c.dims[0]], c.bias)], {
      kernel_shape: [k, k],
      pads: [p, p, p, p],
    });
    if (i < convs.length - 1) y = g.op('Relu', [y]);
  }
  const frames = g.op('Add', [base, g.op('DepthToSpace', [y], { blocksize: s, mode: 'CRD' })]);
  // [B·T, 3, H, H] → [B, T, 3, H, H] (B read off the input) → [B, 3, T, H, H]
  const dims = g.op('Concat', [g.op('Shape', [z], { start: 0, end: 1 }), g.i64([-1, 3, H, H])], { axis: 0 });
  const out = g.op('Transpose', [g.op('Reshape', [frames, dims])], { perm: [0, 2, 1, 3, 4] });
  g.output(out, 'frames', DataType.FLOAT, ['B', 3, 'T', H, H]);
  return g.encode();
}
