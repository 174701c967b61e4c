// Final norm, decoder_pred, drop extras, channel-last unpatchify and final_layer conv (docs/model.md §3, §3.4, §8).
import type { Derived } from '../config.ts';
import { type LayerCtx, layerNorm, linear } from './layers.ts';

export interface HeadOut {
  norm: string;
  decoderPred: string;
  unpatchified: string;
  eps: string;
}

export function head(ctx: LayerCtx, d: Derived, h: string, conv: boolean): HeadOut {
  const { b, w, D } = ctx;
  const { C, p, pt, grid, S } = d;
  const norm = layerNorm(ctx, h, 'norm');
  const decoderPred = linear(ctx, norm, 'decoder_pred', D, d.patchDim); // [B,T,(pt p1 p2 C)]
  const patches = b.op('Slice', [decoderPred, b.i64([d.extras]), b.i64([Number.MAX_SAFE_INTEGER]), b.i64([1])]);
  let unpatchified: string;
  if (!d.video) {
    const r = b.op('Reshape', [patches, b.i64([0, grid, grid, p, p, C])]);
    const tr = b.op('Transpose', [r], { perm: [0, 5, 1, 3, 2, 4] }); // B C h p1 w p2
    unpatchified = b.op('Reshape', [tr, b.i64([0, C, S, S])]);
  } else {
    const r = b.op('Reshape', [patches, b.i64([0, -1, grid, grid, pt, p, p, C])]); // B f h w pt p1 p2 C
    const tr = b.op('Transpose', [r], { perm: [0, 7, 1, 4, 2, 5, 3, 6] }); // B C f pt h p1 w p2
    unpatchified = b.op('Reshape', [tr, b.i64([0, C, -1, S, S])]);
  }
  let eps = unpatchified;
  if (conv) {
    const k = d.video ? [3, 3, 3] : [3, 3];
    const numel = C * C * k.reduce((a, c) => a * c, 1);
    const fw = b.f32('final_layer.weight', [C, C, ...k], w('final_layer.weight', numel));
    const fb = b.f32('final_layer.bias', [C], w('final_layer.bias', C));
    eps = b.op('Conv', [unpatchified, fw, fb], { kernel_shape: k, pads: [...k.map(() => 1), ...k.map(() => 1)] });
  }
  return { norm, decoderPred, unpatchified, eps };
}
