// Tokens from the model inputs (docs/model.md §3, §3.2, §8): patch embed, time token, label / context tokens, pos_embed.
import { DataType } from '../../onnx/onnx.ts';
import type { Derived } from '../config.ts';
import { type LayerCtx, linear } from './layers.ts';

/** torch's float32 freqs = exp(-ln(10000) * arange(half) / half), each step rounded to float32 as torch does. */
export function timestepFreqs(D: number): Float32Array {
  const half = Math.floor(D / 2);
  const c = Math.fround(-Math.log(10000));
  return Float32Array.from({ length: half }, (_, i) => Math.fround(Math.exp(Math.fround(Math.fround(c * i) / half))));
}

export interface EmbedOut {
  /** [B, T, D] after pos_embed */
  h: string;
}

export function embed(ctx: LayerCtx, d: Derived, mlpTimeEmbed: boolean, clipDim: number): EmbedOut {
  const { b, w, D } = ctx;
  const B = 'B';
  const x = d.video
    ? b.input('x', DataType.FLOAT, [B, d.C, 'F', d.S, d.S])
    : b.input('x', DataType.FLOAT, [B, d.C, d.S, d.S]);
  const t = b.input('timesteps', DataType.FLOAT, [B]);

  // patch embed: Conv with kernel = stride = (pt,) p, p; tokens in (frame, row, col) order
  const kernel = d.video ? [d.pt, d.p, d.p] : [d.p, d.p];
  const pw = b.f32('patch_embed.proj.weight', [D, d.C, ...kernel], w('patch_embed.proj.weight', D * d.patchDim));
  const pb = b.f32('patch_embed.proj.bias', [D], w('patch_embed.proj.bias', D));
  const conv = b.op('Conv', [x, pw, pb], { kernel_shape: kernel, strides: kernel });
  const tok = b.op('Transpose', [b.op('Reshape', [conv, b.i64([0, D, -1])])], { perm: [0, 2, 1] }); // [B,L,D]

  // time token: cos-first sinusoid of the float timesteps, float32
  const half = Math.floor(D / 2);
  const args = b.op('Mul', [b.op('Unsqueeze', [t, b.i64([1])]), b.f32('time_freqs', [half], timestepFreqs(D))]);
  let temb = b.op('Concat', [b.op('Cos', [args]), b.op('Sin', [args])], { axis: 1 });
  if (D % 2 === 1) temb = b.op('Pad', [temb, b.i64([0, 0, 0, 1])]);
  if (mlpTimeEmbed) {
    const h1 = linear(ctx, temb, 'time_embed.0', D, 4 * D);
    const silu = b.op('Mul', [h1, b.op('Sigmoid', [h1])]);
    temb = linear(ctx, silu, 'time_embed.2', 4 * D, D);
  }
  const timeTok = b.op('Unsqueeze', [temb, b.i64([1])]); // [B,1,D]

  let parts: string[];
  if (d.variant === 'class') {
    const y = b.input('y', DataType.INT64, [B]);
    const table = b.f32('label_emb.weight', [d.numClasses, D], w('label_emb.weight', d.numClasses * D));
    const label = b.op('Unsqueeze', [b.op('Gather', [table, y], { axis: 0 }), b.i64([1])]);
    parts = [label, timeTok, tok];
  } else if (d.variant === 'text') {
    const n = d.extras - 1;
    const context = b.input('context', DataType.FLOAT, [B, n, clipDim]);
    parts = [timeTok, linear(ctx, context, 'context_embed', clipDim, D), tok];
  } else {
    parts = [timeTok, tok];
  }
  const h = b.op('Concat', parts, { axis: 1 });

  let pos = b.f32('pos_embed', [1, d.T, D], w('pos_embed', d.T * D));
  if (d.video) {
    // a clip of F' <= F frames uses the first extras + (F'/pt)*grid^2 rows
    const len = b.op('Shape', [h], { start: 1, end: 2 });
    pos = b.op('Slice', [pos, b.i64([0]), len, b.i64([1])]);
  }
  return { h: b.op('Add', [h, pos]) };
}
