// U-ViT layers as ONNX subgraphs (docs/model.md §3.1, §3.3, §3.5). Stream tensors are [B, T, D].
import { f, type GraphBuilder, MS_DOMAIN } from '../../onnx/graph.ts';
import { transpose2d, type WeightGetter } from './weights.ts';

export type AttentionImpl = 'ops' | 'contrib' | 'mha';

export interface LayerCtx {
  b: GraphBuilder;
  w: WeightGetter;
  D: number;
  H: number;
  hidden: number;
  qkvBias: boolean;
  attention: AttentionImpl;
}

/** y = x @ W^T + b with W stored pre-transposed [in, out] for MatMul. */
export function linear(ctx: LayerCtx, x: string, prefix: string, inDim: number, outDim: number, bias = true): string {
  const { b, w } = ctx;
  const wt = b.f32(`${prefix}.weight_T`, [inDim, outDim], transpose2d(w(`${prefix}.weight`, outDim * inDim), outDim, inDim));
  const y = b.op('MatMul', [x, wt]);
  if (!bias) return y;
  return b.op('Add', [y, b.f32(`${prefix}.bias`, [outDim], w(`${prefix}.bias`, outDim))]);
}

/** nn.LayerNorm(D), eps 1e-5 (U-ViT's), biased variance, over the last axis. */
export function layerNorm(ctx: LayerCtx, x: string, prefix: string, eps = 1e-5): string {
  const { b, w, D } = ctx;
  const g = b.f32(`${prefix}.weight`, [D], w(`${prefix}.weight`, D));
  const beta = b.f32(`${prefix}.bias`, [D], w(`${prefix}.bias`, D));
  return b.op('LayerNormalization', [x, g, beta], { axis: -1, epsilon: f(eps) });
}

/** Exact (erf) GELU written as torch does, x * 0.5 * (1 + erf(x / sqrt(2))); ORT fuses it into one Gelu kernel. */
export function gelu(b: GraphBuilder, x: string): string {
  const e = b.op('Erf', [b.op('Div', [x, b.scalar(Math.SQRT2)])]);
  return b.op('Mul', [b.op('Mul', [x, b.op('Add', [e, b.scalar(1)])]), b.scalar(0.5)]);
}

function attentionOps(ctx: LayerCtx, x: string, prefix: string): string {
  const { b, D, H } = ctx;
  const Dh = D / H;
  const qkv = linear(ctx, x, `${prefix}.qkv`, D, 3 * D, ctx.qkvBias); // [B,T,3D], channels (3, H, Dh)
  const r = b.op('Reshape', [qkv, b.i64([0, 0, 3, H, Dh])]); // [B,T,3,H,Dh]
  const pick = (k: number, perm: number[]) =>
    b.op('Transpose', [b.op('Gather', [r, b.i64([k], [])], { axis: 2 })], { perm }); // from [B,T,H,Dh]
  const q = pick(0, [0, 2, 1, 3]); // [B,H,T,Dh]
  const kT = pick(1, [0, 2, 3, 1]); // [B,H,Dh,T]
  const v = pick(2, [0, 2, 1, 3]);
  const scores = b.op('Mul', [b.op('MatMul', [q, kT]), b.scalar(Dh ** -0.5)]);
  const a = b.op('Softmax', [scores], { axis: -1 });
  const o = b.op('Transpose', [b.op('MatMul', [a, v])], { perm: [0, 2, 1, 3] }); // [B,T,H,Dh]
  const merged = b.op('Reshape', [o, b.i64([0, 0, D])]);
  return linear(ctx, merged, `${prefix}.proj`, D, D);
}

/** com.microsoft.Attention: the qkv projection, scaled-dot-product attention and head merge in one CPU kernel. */
function attentionContrib(ctx: LayerCtx, x: string, prefix: string): string {
  const { b, w, D, H } = ctx;
  const wt = b.f32(`${prefix}.qkv.weight_T`, [D, 3 * D], transpose2d(w(`${prefix}.qkv.weight`, 3 * D * D), 3 * D, D));
  const bias = ctx.qkvBias ? w(`${prefix}.qkv.bias`, 3 * D) : new Float32Array(3 * D);
  const bq = b.f32(`${prefix}.qkv.bias`, [3 * D], bias);
  const o = b.op('Attention', [x, wt, bq], { num_heads: H, scale: f((D / H) ** -0.5) }, MS_DOMAIN);
  return linear(ctx, o, `${prefix}.proj`, D, D);
}

/** qkv MatMul, then com.microsoft.MultiHeadAttention on the three [B,T,D] slices (ORT CPU: flash attention). */
function attentionMha(ctx: LayerCtx, x: string, prefix: string): string {
  const { b, D, H } = ctx;
  const qkv = linear(ctx, x, `${prefix}.qkv`, D, 3 * D, ctx.qkvBias);
  const [q, k, v] = b.node('Split', [qkv, b.i64([D, D, D])], { axis: -1 }, 3);
  const o = b.op('MultiHeadAttention', [q, k, v], { num_heads: H, scale: f((D / H) ** -0.5) }, MS_DOMAIN);
  return linear(ctx, o, `${prefix}.proj`, D, D);
}

export function attention(ctx: LayerCtx, x: string, prefix: string): string {
  if (ctx.attention === 'contrib') return attentionContrib(ctx, x, prefix);
  if (ctx.attention === 'mha') return attentionMha(ctx, x, prefix);
  return attentionOps(ctx, x, prefix);
}

/** Pre-LN block; for out-blocks, skip_linear(cat([x, skip])) replaces x before norm1 (§3.1). */
export function block(ctx: LayerCtx, x: string, prefix: string, skip?: string): string {
  const { b, D, hidden } = ctx;
  return b.scope(prefix, () => {
    if (skip !== undefined) {
      x = linear(ctx, b.op('Concat', [x, skip], { axis: -1 }), `${prefix}.skip_linear`, 2 * D, D);
    }
    x = b.op('Add', [x, attention(ctx, layerNorm(ctx, x, `${prefix}.norm1`), `${prefix}.attn`)]);
    const h = gelu(b, linear(ctx, layerNorm(ctx, x, `${prefix}.norm2`), `${prefix}.mlp.fc1`, D, hidden));
    return b.op('Add', [x, linear(ctx, h, `${prefix}.mlp.fc2`, hidden, D)]);
  });
}
