// The CLIP text transformer of Hugging Face CLIPTextModel (what libs/clip.py FrozenCLIPEmbedder runs, returning
// last_hidden_state) as ONNX: token + position embeddings, pre-LN blocks with causal self-attention and quick_gelu MLP,
// final LayerNorm. Weights are the Hugging Face safetensors names, with or without the "text_model." prefix a full
// CLIPModel checkpoint (openai/clip-vit-large-patch14) has; its vision tower and projections are ignored.
import { readFileSync } from 'node:fs';
import { GraphBuilder } from '../../onnx/graph.ts';
import { DataType } from '../../onnx/onnx.ts';
import type { TensorReader } from '../tensorFile.ts';
import { gelu, type LayerCtx, layerNorm, linear } from './layers.ts';

export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  layer_norm_eps: number;
  hidden_act: 'quick_gelu' | 'gelu';
}

/** CLIP ViT-L/14's text tower (openai/clip-vit-large-patch14), the encoder of the MS-COCO U-ViT models */
export const CLIP_VIT_L14_TEXT: ClipTextConfig = {
  vocab_size: 49408,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  max_position_embeddings: 77,
  layer_norm_eps: 1e-5,
  hidden_act: 'quick_gelu',
};

/** A Hugging Face config.json of a CLIPTextModel, or of a CLIPModel (its text_config), over CLIPTextConfig's defaults. */
export function readClipTextConfig(path: string): ClipTextConfig {
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const src = (json.model_type === 'clip' ? json.text_config ?? {} : json) as Record<string, unknown>;
  const defaults: ClipTextConfig = { ...CLIP_VIT_L14_TEXT, hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8 };
  const cfg = { ...defaults } as Record<string, unknown>;
  for (const k of Object.keys(defaults)) if (src[k] !== undefined) cfg[k] = src[k];
  const c = cfg as unknown as ClipTextConfig;
  for (const k of Object.keys(defaults) as Array<keyof ClipTextConfig>) {
    if (k === 'hidden_act') continue;
    if (typeof c[k] !== 'number' || !(c[k] > 0)) throw new Error(`CLIP config ${path}: ${k} must be a positive number, got ${JSON.stringify(c[k])}`);
  }
  if (c.hidden_act !== 'quick_gelu' && c.hidden_act !== 'gelu') throw new Error(`CLIP config ${path}: hidden_act ${JSON.stringify(c.hidden_act)} is not quick_gelu or gelu`);
  if (c.hidden_size % c.num_attention_heads !== 0) throw new Error(`CLIP config ${path}: hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`);
  return c;
}

/** The text tower's parameters (names without the "text_model." prefix) and shapes. */
export function clipTextParams(c: ClipTextConfig): Map<string, number[]> {
  const D = c.hidden_size;
  const out = new Map<string, number[]>([
    ['embeddings.token_embedding.weight', [c.vocab_size, D]],
    ['embeddings.position_embedding.weight', [c.max_position_embeddings, D]],
  ]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `encoder.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      out.set(`${p}.self_attn.${n}.weight`, [D, D]);
      out.set(`${p}.self_attn.${n}.bias`, [D]);
    }
    for (const n of ['layer_norm1', 'layer_norm2']) {
      out.set(`${p}.${n}.weight`, [D]);
      out.set(`${p}.${n}.bias`, [D]);
    }
    out.set(`${p}.mlp.fc1.weight`, [c.intermediate_size, D]);
    out.set(`${p}.mlp.fc1.bias`, [c.intermediate_size]);
    out.set(`${p}.mlp.fc2.weight`, [D, c.intermediate_size]);
    out.set(`${p}.mlp.fc2.bias`, [D]);
  }
  out.set('final_layer_norm.weight', [D]);
  out.set('final_layer_norm.bias', [D]);
  return out;
}

/** "text_model." when the file is a full CLIPModel checkpoint, "" for a CLIPTextModel one. */
export function clipTextPrefix(file: TensorReader): string {
  if (file.has('text_model.embeddings.token_embedding.weight')) return 'text_model.';
  if (file.has('embeddings.token_embedding.weight')) return '';
  throw new Error(`${file.path} is not a Hugging Face CLIP checkpoint: no (text_model.)embeddings.token_embedding.weight`);
}

/** input_ids [B, T] int64 (T <= max_position_embeddings) -> last_hidden_state [B, T, hidden_size] */
export function buildClipText(c: ClipTextConfig, weight: (name: string) => Float32Array): Uint8Array {
  const b = new GraphBuilder('clip_text', 17);
  const D = c.hidden_size;
  const H = c.num_attention_heads;
  const Dh = D / H;
  const shapes = clipTextParams(c);
  const ctx: LayerCtx = {
    b,
    w: (name, numel) => {
      const data = weight(name);
      if (data.length !== numel) throw new Error(`CLIP weight "${name}" has ${data.length} elements, expected ${numel}`);
      return data;
    },
    D,
    H,
    hidden: c.intermediate_size,
    qkvBias: true,
    attention: 'ops',
  };
  const table = (name: string) => b.f32(name, shapes.get(name)!, weight(name));
  const ids = b.input('input_ids', DataType.INT64, ['B', 'T']);
  const len = b.op('Shape', [ids], { start: 1, end: 2 });
  const pos = b.op('Slice', [table('embeddings.position_embedding.weight'), b.i64([0]), len, b.i64([0])]);
  let h = b.op('Add', [b.op('Gather', [table('embeddings.token_embedding.weight'), ids], { axis: 0 }), pos]);

  // causal mask [T, T]: 0 on and below the diagonal, the float32 minimum above it (HF's _create_4d_causal_attention_mask)
  const ar = b.op('Range', [b.i64([0], []), b.op('Squeeze', [len, b.i64([0])]), b.i64([1], [])]);
  const above = b.op('Greater', [b.op('Unsqueeze', [ar, b.i64([0])]), b.op('Unsqueeze', [ar, b.i64([1])])]);
  const mask = b.op('Where', [above, b.scalar(-3.4028234663852886e38), b.scalar(0)]);

  const heads = (x: string, perm: number[]) => b.op('Transpose', [b.op('Reshape', [x, b.i64([0, 0, H, Dh])])], { perm });
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `encoder.layers.${i}`;
    h = b.scope(p, () => {
      const x = layerNorm(ctx, h, `${p}.layer_norm1`, c.layer_norm_eps);
      const q = heads(b.op('Mul', [linear(ctx, x, `${p}.self_attn.q_proj`, D, D), b.scalar(Dh ** -0.5)]), [0, 2, 1, 3]);
      const k = heads(linear(ctx, x, `${p}.self_attn.k_proj`, D, D), [0, 2, 3, 1]);
      const v = heads(linear(ctx, x, `${p}.self_attn.v_proj`, D, D), [0, 2, 1, 3]);
      const a = b.op('Softmax', [b.op('Add', [b.op('MatMul', [q, k]), mask])], { axis: -1 });
      const o = b.op('Reshape', [b.op('Transpose', [b.op('MatMul', [a, v])], { perm: [0, 2, 1, 3] }), b.i64([0, 0, D])]);
      const h1 = b.op('Add', [h, linear(ctx, o, `${p}.self_attn.out_proj`, D, D)]);
      const m = linear(ctx, layerNorm(ctx, h1, `${p}.layer_norm2`, c.layer_norm_eps), `${p}.mlp.fc1`, D, c.intermediate_size);
      const act = c.hidden_act === 'quick_gelu'
        ? b.op('Mul', [m, b.op('Sigmoid', [b.op('Mul', [m, b.scalar(1.702)])])])
        : gelu(b, m);
      return b.op('Add', [h1, linear(ctx, act, `${p}.mlp.fc2`, c.intermediate_size, D)]);
    });
  }
  b.output(layerNorm(ctx, h, 'final_layer_norm', c.layer_norm_eps), 'last_hidden_state', DataType.FLOAT, ['B', 'T', D]);
  return b.encode();
}
