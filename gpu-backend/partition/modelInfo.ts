// What the planner needs to know about a model: its dimensions (for FLOPs and bytes) and which official
// state_dict tensors belong to the embed, each chain block and the head (for the stage shards).
// `specModelInfo` derives the names from docs/model.md §2 alone, so the planner is usable and testable on its own;
// `modelInfoFromConfig` (configInfo.ts) takes them from the model package's own helpers.

import { chain } from '../model/chain.ts';
import type { ModelDims } from './flops.ts';

export interface ModelInfo {
  dims: ModelDims;
  embedParams: string[];
  headParams: string[];
  /** params of chain block c, official names */
  blockParams(c: number): string[];
  /** float32 bytes of one named param */
  paramBytes(name: string): number;
}

/** Official names and shapes (docs/model.md §2 and §8) of every parameter, from the dimensions. */
export function specParamShapes(d: ModelDims): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const { D, hidden } = d;
  m.set('pos_embed', [1, d.T, D]);
  m.set('patch_embed.proj.weight', [D, d.patchDim]); // real rank is 4 or 5; only the element count matters here
  m.set('patch_embed.proj.bias', [D]);
  if (d.mlpTimeEmbed) {
    m.set('time_embed.0.weight', [4 * D, D]);
    m.set('time_embed.0.bias', [4 * D]);
    m.set('time_embed.2.weight', [D, 4 * D]);
    m.set('time_embed.2.bias', [D]);
  }
  if (d.numClasses > 0) m.set('label_emb.weight', [d.numClasses, D]);
  if (d.contextTokens > 0) {
    m.set('context_embed.weight', [D, d.clipDim]);
    m.set('context_embed.bias', [D]);
  }
  for (let c = 0; c < chain.length(d.n); c++) {
    const b = chain.name(d.n, c);
    m.set(`${b}.norm1.weight`, [D]);
    m.set(`${b}.norm1.bias`, [D]);
    m.set(`${b}.attn.qkv.weight`, [3 * D, D]);
    if (d.qkvBias) m.set(`${b}.attn.qkv.bias`, [3 * D]);
    m.set(`${b}.attn.proj.weight`, [D, D]);
    m.set(`${b}.attn.proj.bias`, [D]);
    m.set(`${b}.norm2.weight`, [D]);
    m.set(`${b}.norm2.bias`, [D]);
    m.set(`${b}.mlp.fc1.weight`, [hidden, D]);
    m.set(`${b}.mlp.fc1.bias`, [hidden]);
    m.set(`${b}.mlp.fc2.weight`, [D, hidden]);
    m.set(`${b}.mlp.fc2.bias`, [D]);
    if (d.skip && c > d.n) {
      m.set(`${b}.skip_linear.weight`, [D, 2 * D]);
      m.set(`${b}.skip_linear.bias`, [D]);
    }
  }
  m.set('norm.weight', [D]);
  m.set('norm.bias', [D]);
  m.set('decoder_pred.weight', [d.patchDim, D]);
  m.set('decoder_pred.bias', [d.patchDim]);
  if (d.conv) {
    m.set('final_layer.weight', d.video ? [d.C, d.C, 3, 3, 3] : [d.C, d.C, 3, 3]);
    m.set('final_layer.bias', [d.C]);
  }
  return m;
}

/** ModelInfo from a name -> shape map (float32) and the dimensions. */
export function modelInfoFromShapes(dims: ModelDims, shapes: Map<string, readonly number[]>): ModelInfo {
  const names = [...shapes.keys()];
  const blockPrefix = (c: number) => `${chain.name(dims.n, c)}.`;
  const isBlock = (name: string) => /^(in_blocks\.\d+|mid_block|out_blocks\.\d+)\./.test(name);
  const headSet = new Set(['norm.weight', 'norm.bias', 'decoder_pred.weight', 'decoder_pred.bias', 'final_layer.weight', 'final_layer.bias']);
  return {
    dims,
    embedParams: names.filter((x) => !isBlock(x) && !headSet.has(x)),
    headParams: names.filter((x) => headSet.has(x)),
    blockParams: (c) => names.filter((x) => x.startsWith(blockPrefix(c))),
    paramBytes(name) {
      const s = shapes.get(name);
      if (!s) throw new Error(`model info: unknown parameter '${name}' (not one of this model's ${shapes.size} parameters)`);
      return 4 * s.reduce((a, b) => a * b, 1);
    },
  };
}

export function specModelInfo(dims: ModelDims): ModelInfo {
  return modelInfoFromShapes(dims, specParamShapes(dims));
}
