// The demo's text encoder and latent decoder as ONNX graphs with SEEDED RANDOM, UNTRAINED weights, built with the
// project's graph builder (gpu-backend/onnx/). They have the shapes of the real thing so the whole path prompt → MP4
// runs; their output is meaningless (noise-like video). Replace them by config with a real CLIP / VAE ONNX export.
import { GraphBuilder, f } from '../onnx/graph.ts';
import { DataType } from '../onnx/onnx.ts';
import { Rng } from '../driver/rng.ts';
import { ByteTokenizer } from '../driver/text/tokenizer.ts';

function normal(rng: Rng, n: number, std: number): Float32Array {
  const a = rng.fillNormal(new Float32Array(n));
  for (let i = 0; i < n; i++) a[i] *= std;
  return a;
}

export interface DemoTextEncoderSpec {
  /** tokens per prompt (num_clip_token) */
  numTokens: number;
  /** output width (clip_dim) */
  dim: number;
  seed: number;
}

/**
 * input_ids [B, n] int64 (byte tokenizer ids 0..256) → last_hidden_state [B, n, dim] float32.
 * embedding + learned positions → one pre-LN transformer layer (single-head attention, erf-GELU MLP) → LayerNorm.
 */
export function buildDemoTextEncoder(spec: DemoTextEncoderSpec): Uint8Array {
  const { numTokens: n, dim: c } = spec;
  const rng = new Rng(spec.seed);
  const g = new GraphBuilder('demo_text_encoder', 17);
  const ids = g.input('input_ids', DataType.INT64, ['B', n]);
  const emb = g.op('Gather', [g.f32('tok_emb', [ByteTokenizer.VOCAB, c], normal(rng, ByteTokenizer.VOCAB * c, 1)), ids], { axis: 0 });
  let h = g.op('Add', [emb, g.f32('pos_emb', [n, c], normal(rng, n * c, 0.5))]);
  const ln = (x: string, name: string) =>
    g.op('LayerNormalization', [x, g.f32(`${name}.w`, [c], new Float32Array(c).fill(1)), g.f32(`${name}.b`, [c], new Float32Array(c))], {
      axis: -1,
      epsilon: f(1e-5),
    });
  const lin = (x: string, name: string, i: number, o: number) =>
    g.op('Add', [g.op('MatMul', [x, g.f32(`${name}.w`, [i, o], normal(rng, i * o, 1 / Math.sqrt(i)))]), g.f32(`${name}.b`, [o], normal(rng, o, 0.02))]);
  // attention
  const a = ln(h, 'ln1');
  const q = lin(a, 'q', c, c);
  const k = lin(a, 'k', c, c);
  const v = lin(a, 'v', c, c);
  const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 2, 1] })]), g.scalar(1 / Math.sqrt(c))]);
  const att = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
  h = g.op('Add', [h, lin(att, 'o', c, c)]);
  // MLP with exact (erf) GELU
  const m = lin(ln(h, 'ln2'), 'fc1', c, 4 * c);
  const gelu = g.op('Mul', [g.op('Mul', [m, g.scalar(0.5)]), g.op('Add', [g.op('Erf', [g.op('Mul', [m, g.scalar(Math.SQRT1_2)])]), g.scalar(1)])]);
  h = g.op('Add', [h, lin(gelu, 'fc2', 4 * c, c)]);
  g.output(ln(h, 'ln_f'), 'last_hidden_state', DataType.FLOAT, ['B', n, c]);
  return g.encode();
}

export interface DemoDecoderSpec {
  /** latent channels C */
  channels: number;
  /** latent side h = w */
  size: number;
  temporal: number;
  spatial: number;
  hidden: number;
  seed: number;
}

/**
 * latents [B, C, F, h, w] → frames [B, 3, tF, s·h, s·w] in [0, 1]:
 * Conv3d 3³ (C→hidden) + SiLU, Conv3d 3³ (hidden→hidden) + SiLU, 1×1×1 conv to 3·t·s·s channels, a space-time
 * depth-to-space (pixel shuffle: channel c·(t·s·s) + dt·s·s + dy·s + dx → pixel (c, t·f+dt, s·y+dy, s·x+dx)), a 1×3×3
 * smoothing conv per frame, sigmoid. B and F are dynamic.
 */
export function buildDemoDecoder(spec: DemoDecoderSpec): Uint8Array {
  const { channels: C, size: S, temporal: t, spatial: s, hidden: Hd } = spec;
  const rng = new Rng(spec.seed);
  const g = new GraphBuilder('demo_latent_decoder', 17);
  const z = g.input('latents', DataType.FLOAT, ['B', C, 'F', S, S]);
  const conv = (x: string, name: string, cin: number, cout: number, k: [number, number, number], std?: number) => {
    const fan = cin * k[0] * k[1] * k[2];
    const w = g.f32(`${name}.w`, [cout, cin, ...k], normal(rng, cout * fan, std ?? 1 / Math.sqrt(fan)));
    const b = g.f32(`${name}.b`, [cout], normal(rng, cout, 0.05));
    const pads = [(k[0] - 1) / 2, (k[1] - 1) / 2, (k[2] - 1) / 2];
    return g.op('Conv', [x, w, b], { kernel_shape: k, pads: [...pads, ...pads] });
  };
  const silu = (x: string) => g.op('Mul', [x, g.op('Sigmoid', [x])]);
  let h = silu(conv(z, 'conv_in', C, Hd, [3, 3, 3]));
  h = silu(conv(h, 'conv_mid', Hd, Hd, [3, 3, 3]));
  h = conv(h, 'to_pixels', Hd, 3 * t * s * s, [1, 1, 1]);
  // [B, 3·t·s·s, F, h, w] → [B, 3, t, s, s, F, h, w] → [B, 3, F, t, h, s, w, s] → [B, 3, F·t, h·s, w·s]
  h = g.op('Reshape', [h, g.i64([0, 3, t, s, s, -1, S, S])]);
  h = g.op('Transpose', [h], { perm: [0, 1, 5, 2, 6, 3, 7, 4] });
  h = g.op('Reshape', [h, g.i64([0, 3, -1, S * s, S * s])]);
  h = conv(h, 'smooth', 3, 3, [1, 3, 3], 0.25);
  g.output(g.op('Sigmoid', [h]), 'frames', DataType.FLOAT, ['B', 3, 'T', S * s, S * s]);
  return g.encode();
}
