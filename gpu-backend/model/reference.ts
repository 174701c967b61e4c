// Slow, obviously-correct float64 reference forward of U-ViT (docs/model.md §3) and its video extension (§8).
// Every variant: class / text / uncond, mlp_time_embed, qkv_bias, conv true/false, 2-D, and video with any pt,
// including clips shorter than num_frames (first F' latent frames => pos_embed rows [0, extras + (F'/pt) grid^2)).
// Intermediates are named like the golden files. Not for production: O(T^2 D) plain loops.
import { float32, type Tensor } from '../../shared/tensor.ts';
import { chain } from './chain.ts';
import { derive, type UViTConfig } from './config.ts';
import { expectedParams } from './weights.ts';
import { attention, conv2dSame, conv3dSame, gelu, layerNorm, linear, silu, timestepEmbedding } from './referenceOps.ts';

export { timestepEmbedding } from './referenceOps.ts';

export interface ReferenceInputs {
  /** [B, C, S, S] (2-D) or [B, C, F', S, S] (video, F' a multiple of pt, <= num_frames) */
  x: Tensor;
  /** [B] float32 (or int64 / int32) */
  timesteps: Tensor;
  /** [B] int64 or int32, class variant only */
  y?: Tensor;
  /** [B, num_clip_token, clip_dim] float32, text variant only */
  context?: Tensor;
}

export interface ReferenceOptions {
  /** timestep embedding arithmetic, see timestepEmbedding (default 'float32' = the official torch arithmetic) */
  timestepPrecision?: 'float32' | 'float64';
  /**
   * Deliberately WRONG variants of docs/model.md §7, only for proving that a comparison test is sensitive to them
   * (sin-first sinusoid, tanh-approximate GELU, another LayerNorm eps). Never use them for anything else.
   * (A [skip, x] concat and a (C,p,p) unpatchify need no switch: permute skip_linear / decoder_pred weights.)
   */
  wrong?: { sinFirst?: boolean; tanhGelu?: boolean; lnEps?: number };
}

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export interface ReferenceResult {
  output: Tensor<'float32'>;
  intermediates: Map<string, Tensor<'float32'>>;
}

function toNumbers(t: Tensor, what: string): number[] {
  switch (t.dtype) {
    case 'float32':
    case 'int32':
      return Array.from(t.data as Float32Array | Int32Array);
    case 'int64':
      return Array.from(t.data as BigInt64Array, (v) => Number(v));
    default:
      throw new Error(`reference forward: ${what} has dtype ${t.dtype}, expected float32, int64 or int32`);
  }
}

const f32 = (dims: number[], x: Float64Array) => float32(dims, Float32Array.from(x));
const shapeStr = (d: readonly number[]) => `[${d.join(',')}]`;

export function referenceForward(cfg: UViTConfig, weights: Map<string, Tensor<'float32'>>,
  inputs: ReferenceInputs, opts: ReferenceOptions = {}): ReferenceResult {
  const d = derive(cfg);
  const { D, H, C, p, pt, S, grid, extras, hidden, n } = d;
  // weights: every expected tensor with its expected shape
  for (const [k, shape] of expectedParams(cfg)) {
    const t = weights.get(k);
    if (!t) throw new Error(`reference forward: missing weight "${k}"`);
    if (shapeStr(t.dims) !== shapeStr(shape)) {
      throw new Error(`reference forward: weight "${k}" has shape ${shapeStr(t.dims)}, expected ${shapeStr(shape)}`);
    }
  }
  const W = (k: string) => weights.get(k)!.data;
  const Wopt = (k: string) => weights.get(k)?.data;

  // ---- inputs
  const { x } = inputs;
  if (x.dtype !== 'float32') throw new Error(`reference forward: x has dtype ${x.dtype}, expected float32`);
  const B = x.dims[0];
  const frames = d.video ? x.dims[2] : 1;
  const expX = d.inputShape(B, d.video ? frames : undefined);
  if (shapeStr(x.dims) !== shapeStr(expX)) {
    throw new Error(`reference forward: x has shape ${shapeStr(x.dims)}, expected ${shapeStr(expX)}`);
  }
  const Lx = d.tokensFor(d.video ? frames : undefined);
  const T = extras + Lx;
  const ts = toNumbers(inputs.timesteps, 'timesteps');
  if (ts.length !== B || inputs.timesteps.dims.length !== 1) {
    throw new Error(`reference forward: timesteps has shape ${shapeStr(inputs.timesteps.dims)}, expected [${B}]`);
  }
  const xd = x.data as Float32Array;

  // ---- patch embedding: Conv2d / Conv3d with kernel = stride = patch, tokens in (frame, row, col) order
  const tok = new Float64Array(B * Lx * D);
  const pw = W('patch_embed.proj.weight');
  const pb = W('patch_embed.proj.bias');
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < frames / pt; f++) {
      for (let r = 0; r < grid; r++) {
        for (let c = 0; c < grid; c++) {
          const l = (f * grid + r) * grid + c;
          for (let o = 0; o < D; o++) {
            let s = pb[o];
            for (let ci = 0; ci < C; ci++) {
              for (let kt = 0; kt < pt; kt++) {
                for (let kh = 0; kh < p; kh++) {
                  for (let kw = 0; kw < p; kw++) {
                    const xv = d.video
                      ? xd[(((b * C + ci) * frames + f * pt + kt) * S + r * p + kh) * S + c * p + kw]
                      : xd[((b * C + ci) * S + r * p + kh) * S + c * p + kw];
                    const wv = d.video
                      ? pw[((((o * C + ci) * pt + kt) * p + kh) * p) + kw]
                      : pw[((o * C + ci) * p + kh) * p + kw];
                    s += xv * wv;
                  }
                }
              }
            }
            tok[(b * Lx + l) * D + o] = s;
          }
        }
      }
    }
  }

  // ---- time token: raw cos-first sinusoid, or Linear -> SiLU -> Linear
  let temb = timestepEmbedding(ts, D, opts.timestepPrecision ?? 'float32');
  const wrong = opts.wrong ?? {};
  if (wrong.sinFirst) {
    const half = Math.floor(D / 2);
    const t2 = new Float64Array(temb.length);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < half; i++) {
        t2[b * D + i] = temb[b * D + half + i];
        t2[b * D + half + i] = temb[b * D + i];
      }
    }
    temb = t2;
  }
  const act = wrong.tanhGelu ? geluTanh : gelu;
  const eps = wrong.lnEps ?? 1e-5;
  if (cfg.mlp_time_embed) {
    const h1 = linear(temb, B, D, W('time_embed.0.weight'), 4 * D, W('time_embed.0.bias'));
    for (let i = 0; i < h1.length; i++) h1[i] = silu(h1[i]);
    temb = linear(h1, B, 4 * D, W('time_embed.2.weight'), D, W('time_embed.2.bias'));
  }

  // ---- extra tokens: class [label, time], text [time, ctx...], uncond [time]
  const extra = new Float64Array(B * extras * D);
  if (d.variant === 'class') {
    if (!inputs.y) throw new Error('reference forward: class-conditional config needs y');
    const ys = toNumbers(inputs.y, 'y');
    if (ys.length !== B) throw new Error(`reference forward: y has ${ys.length} entries, expected ${B}`);
    const emb = W('label_emb.weight');
    for (let b = 0; b < B; b++) {
      if (!Number.isInteger(ys[b]) || ys[b] < 0 || ys[b] >= d.numClasses) {
        throw new Error(`reference forward: y[${b}] = ${ys[b]} is outside [0, ${d.numClasses})`);
      }
      for (let o = 0; o < D; o++) {
        extra[(b * extras + 0) * D + o] = emb[ys[b] * D + o];
        extra[(b * extras + 1) * D + o] = temb[b * D + o];
      }
    }
  } else if (d.variant === 'text') {
    const ctx = inputs.context;
    const nTok = cfg.num_clip_token!;
    const cd = cfg.clip_dim!;
    if (!ctx) throw new Error('reference forward: text config needs context');
    if (ctx.dtype !== 'float32' || shapeStr(ctx.dims) !== shapeStr([B, nTok, cd])) {
      throw new Error(`reference forward: context is ${ctx.dtype} ${shapeStr(ctx.dims)}, expected float32 ${shapeStr([B, nTok, cd])}`);
    }
    const ce = linear(Float64Array.from(ctx.data as Float32Array), B * nTok, cd, W('context_embed.weight'), D,
      W('context_embed.bias'));
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < D; o++) extra[(b * extras + 0) * D + o] = temb[b * D + o];
      for (let j = 0; j < nTok; j++) {
        for (let o = 0; o < D; o++) extra[(b * extras + 1 + j) * D + o] = ce[(b * nTok + j) * D + o];
      }
    }
  } else {
    if (inputs.y || inputs.context) throw new Error('reference forward: unconditional config takes no y / context');
    for (let b = 0; b < B; b++) for (let o = 0; o < D; o++) extra[b * D + o] = temb[b * D + o];
  }
  if (d.variant === 'class' && inputs.context) throw new Error('reference forward: class config takes no context');
  if (d.variant === 'text' && inputs.y) throw new Error('reference forward: text config takes no y');

  // ---- concat and add pos_embed (rows [0, T): extras + the first Lx patch positions)
  let h: Float64Array = new Float64Array(B * T * D);
  const pos = W('pos_embed');
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < D; o++) {
        const v = t < extras ? extra[(b * extras + t) * D + o] : tok[(b * Lx + t - extras) * D + o];
        h[(b * T + t) * D + o] = v + pos[t * D + o];
      }
    }
  }
  const inter = new Map<string, Tensor<'float32'>>();
  inter.set('tokens_after_pos_embed', f32([B, T, D], h));

  // ---- blocks
  const block = (xIn: Float64Array, prefix: string, skip?: Float64Array): Float64Array => {
    let xb: Float64Array = xIn;
    if (skip) {
      // skip_linear(cat([x, skip], -1)) replaces x
      const cat = new Float64Array(B * T * 2 * D);
      for (let r = 0; r < B * T; r++) {
        for (let o = 0; o < D; o++) {
          cat[r * 2 * D + o] = xb[r * D + o];
          cat[r * 2 * D + D + o] = skip[r * D + o];
        }
      }
      xb = linear(cat, B * T, 2 * D, W(`${prefix}.skip_linear.weight`), D, W(`${prefix}.skip_linear.bias`));
    }
    const a = attention(layerNorm(xb, B * T, D, W(`${prefix}.norm1.weight`), W(`${prefix}.norm1.bias`), eps), B, T, D, H,
      W(`${prefix}.attn.qkv.weight`), Wopt(`${prefix}.attn.qkv.bias`), W(`${prefix}.attn.proj.weight`),
      W(`${prefix}.attn.proj.bias`));
    const x1 = new Float64Array(xb.length);
    for (let i = 0; i < xb.length; i++) x1[i] = xb[i] + a[i];
    const m1 = linear(layerNorm(x1, B * T, D, W(`${prefix}.norm2.weight`), W(`${prefix}.norm2.bias`), eps), B * T, D,
      W(`${prefix}.mlp.fc1.weight`), hidden, W(`${prefix}.mlp.fc1.bias`));
    for (let i = 0; i < m1.length; i++) m1[i] = act(m1[i]);
    const m2 = linear(m1, B * T, hidden, W(`${prefix}.mlp.fc2.weight`), D, W(`${prefix}.mlp.fc2.bias`));
    const x2 = new Float64Array(xb.length);
    for (let i = 0; i < xb.length; i++) x2[i] = x1[i] + m2[i];
    return x2;
  };
  const skips: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    h = block(h, chain.name(n, i));
    skips.push(h);
    inter.set(`in_blocks.${i}`, f32([B, T, D], h));
  }
  h = block(h, 'mid_block');
  inter.set('mid_block', f32([B, T, D], h));
  for (let j = 0; j < n; j++) {
    h = block(h, `out_blocks.${j}`, skips.pop()); // LIFO: out_blocks[j] gets in_blocks[n-1-j]
    inter.set(`out_blocks.${j}`, f32([B, T, D], h));
  }

  // ---- head
  h = layerNorm(h, B * T, D, W('norm.weight'), W('norm.bias'), eps);
  inter.set('norm', f32([B, T, D], h));
  const P = pt * p * p * C;
  const dec = linear(h, B * T, D, W('decoder_pred.weight'), P, W('decoder_pred.bias'));
  inter.set('decoder_pred', f32([B, T, P], dec));
  // drop the extras, unpatchify: last axis (pt, p1, p2, C) channel-last -> [B, C, (f pt), (h p1), (w p2)]
  const img = new Float64Array(B * C * frames * S * S);
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < frames / pt; f++) {
      for (let r = 0; r < grid; r++) {
        for (let c = 0; c < grid; c++) {
          const t = extras + (f * grid + r) * grid + c;
          for (let kt = 0; kt < pt; kt++) {
            for (let p1 = 0; p1 < p; p1++) {
              for (let p2 = 0; p2 < p; p2++) {
                for (let ch = 0; ch < C; ch++) {
                  const v = dec[(b * T + t) * P + ((kt * p + p1) * p + p2) * C + ch];
                  img[(((b * C + ch) * frames + f * pt + kt) * S + r * p + p1) * S + c * p + p2] = v;
                }
              }
            }
          }
        }
      }
    }
  }
  const outDims = [...x.dims];
  inter.set('unpatchified_before_final_layer', f32(outDims, img));
  let out: Float64Array = img;
  if (cfg.conv) {
    out = d.video
      ? conv3dSame(img, B, C, frames, S, S, W('final_layer.weight'), W('final_layer.bias'), C, 3, 1)
      : conv2dSame(img, B, C, S, S, W('final_layer.weight'), W('final_layer.bias'), C, 3, 1);
  }
  return { output: f32(outDims, out), intermediates: inter };
}
