// Forward FLOPs and parameter bytes of the U-ViT chain, per sample, from the model dimensions.
// Pure arithmetic (no I/O). Conventions: a multiply-add counts 2 FLOPs (matmul [M,K]x[K,N] = 2MKN);
// elementwise ops count roughly what they cost (LayerNorm 8/elt, erf-GELU 8/elt, softmax 5/elt).
// The figures only steer the planner and the cost model, so a few % off on elementwise ops is fine;
// matmuls, which dominate, are exact.

import { chain } from '../model/chain.ts';

/** The dimensions the cost arithmetic needs (a subset of the model config + its derived sizes). */
export interface ModelDims {
  /** in-blocks (= out-blocks) count: depth // 2 */
  n: number;
  /** embed_dim */
  D: number;
  /** num_heads */
  H: number;
  /** MLP hidden width int(D * mlp_ratio) */
  hidden: number;
  /** tokens per sample: extras + L */
  T: number;
  /** patch tokens */
  L: number;
  /** extra tokens before the patches (label/time/context) */
  extras: number;
  /** elements per patch: C * pt * p * p (patch embed fan-in and decoder_pred fan-out) */
  patchDim: number;
  /** in_chans */
  C: number;
  /** output pixels per channel: F*S*S for video, S*S for images (final_layer conv runs over them) */
  pixels: number;
  /** 3-D final conv (kernel 3x3x3) instead of 2-D (3x3) */
  video: boolean;
  qkvBias: boolean;
  mlpTimeEmbed: boolean;
  conv: boolean;
  /** out blocks have skip_linear (the official default) */
  skip: boolean;
  /** text variant: context tokens and CLIP width (0 otherwise) */
  contextTokens: number;
  clipDim: number;
  /** class variant: label_emb rows (0 otherwise) */
  numClasses: number;
}

const LN_PER_ELT = 8;
const GELU_PER_ELT = 8;
const SOFTMAX_PER_ELT = 5;

const matmul = (m: number, k: number, n: number) => 2 * m * k * n;

/** FLOPs of one pre-LN transformer block over T tokens (+ skip_linear when it is an out block). */
export function blockFlops(d: ModelDims, withSkipLinear: boolean): number {
  const { T, D, H, hidden } = d;
  let f = 0;
  if (withSkipLinear) f += matmul(T, 2 * D, D) + T * D; // Linear(2D -> D) with bias on cat([x, skip])
  f += LN_PER_ELT * T * D; // norm1
  f += matmul(T, D, 3 * D) + (d.qkvBias ? 3 * T * D : 0); // qkv
  f += matmul(T, D, T); // scores: H heads x [T,Dh]x[Dh,T] = 2*T*T*D, plus the scale
  f += H * T * T * (1 + SOFTMAX_PER_ELT);
  f += matmul(T, T, D); // A @ V over all heads
  f += matmul(T, D, D) + T * D; // proj (+bias)
  f += T * D; // residual add
  f += LN_PER_ELT * T * D; // norm2
  f += matmul(T, D, hidden) + T * hidden; // fc1
  f += GELU_PER_ELT * T * hidden;
  f += matmul(T, hidden, D) + T * D; // fc2
  f += T * D; // residual add
  return f;
}

/** FLOPs of chain block c (in-blocks and mid have no skip_linear; out blocks do when skip=true). */
export function chainBlockFlops(d: ModelDims, c: number): number {
  checkChainIndex(d, c);
  return blockFlops(d, d.skip && c > d.n);
}

/** Patch embed, time embedding (+ optional MLP), label/context embedding, pos_embed add. */
export function embedFlops(d: ModelDims): number {
  const { D, L, T } = d;
  let f = matmul(L, d.patchDim, D) + L * D; // Conv with kernel = stride = patch: a linear map per patch
  f += D * 3; // sinusoid (args, cos, sin) for one timestep
  if (d.mlpTimeEmbed) f += matmul(1, D, 4 * D) + 4 * D + 4 * 4 * D + matmul(1, 4 * D, D) + D; // Linear, SiLU, Linear
  if (d.contextTokens > 0) f += matmul(d.contextTokens, d.clipDim, D) + d.contextTokens * D;
  f += T * D; // + pos_embed
  return f;
}

/** norm, decoder_pred (over all T tokens, as the official code does), unpatchify (free), final_layer conv. */
export function headFlops(d: ModelDims): number {
  const { D, T } = d;
  let f = LN_PER_ELT * T * D;
  f += matmul(T, D, d.patchDim) + T * d.patchDim;
  if (d.conv) {
    const k = d.video ? 27 : 9;
    f += 2 * d.C * d.C * k * d.pixels + d.C * d.pixels;
  }
  return f;
}

/** Parameter element counts (float32 weights => bytes = 4 x elements). */
export function blockParamCount(d: ModelDims, withSkipLinear: boolean): number {
  const { D, hidden } = d;
  let p = 2 * D; // norm1
  p += 3 * D * D + (d.qkvBias ? 3 * D : 0);
  p += D * D + D; // proj
  p += 2 * D; // norm2
  p += hidden * D + hidden + D * hidden + D; // fc1, fc2
  if (withSkipLinear) p += 2 * D * D + D;
  return p;
}

export function chainBlockParamCount(d: ModelDims, c: number): number {
  checkChainIndex(d, c);
  return blockParamCount(d, d.skip && c > d.n);
}

export function embedParamCount(d: ModelDims): number {
  const { D } = d;
  let p = d.T * D; // pos_embed
  p += D * d.patchDim + D; // patch_embed.proj
  if (d.mlpTimeEmbed) p += 4 * D * D + 4 * D + D * 4 * D + D;
  if (d.numClasses > 0) p += d.numClasses * D;
  if (d.contextTokens > 0) p += D * d.clipDim + D;
  return p;
}

export function headParamCount(d: ModelDims): number {
  let p = 2 * d.D + d.patchDim * d.D + d.patchDim; // norm, decoder_pred
  if (d.conv) p += d.C * d.C * (d.video ? 27 : 9) + d.C;
  return p;
}

/** Bytes of one stream or skip tensor [B, T, D] (what one hop moves). */
export function activationBytes(d: ModelDims, batch: number, bytesPerElement = 4): number {
  return batch * d.T * d.D * bytesPerElement;
}

/** Bytes of the model output eps [B, C, (F,) S, S] (leaves the head segment for the driver). */
export function outputBytes(d: ModelDims, batch: number, bytesPerElement = 4): number {
  return batch * d.C * d.pixels * bytesPerElement;
}

/** Per-chain-block FLOPs, index = chain index. */
export function chainFlops(d: ModelDims): number[] {
  return Array.from({ length: chain.length(d.n) }, (_, c) => chainBlockFlops(d, c));
}

/** Whole-model forward FLOPs per sample. */
export function totalFlops(d: ModelDims): number {
  return embedFlops(d) + chainFlops(d).reduce((a, b) => a + b, 0) + headFlops(d);
}

function checkChainIndex(d: ModelDims, c: number): void {
  if (!Number.isInteger(c) || c < 0 || c >= chain.length(d.n)) {
    throw new Error(`chain index ${c} out of range: expected an integer in [0, ${chain.length(d.n)}) for n=${d.n}`);
  }
}
