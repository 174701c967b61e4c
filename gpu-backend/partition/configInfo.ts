// Adapter from the model config (gpu-backend/model/config.ts) to the planner's ModelInfo.

import type { UViTConfig } from '../model/config.ts';
import { derive } from '../model/config.ts';
import type { ModelDims } from './flops.ts';
import type { ModelInfo } from './modelInfo.ts';
import { modelInfoFromShapes } from './modelInfo.ts';
import { embedParams, expectedParams, headParams, paramsOfChainBlock } from '../model/weights.ts';

export function dimsFromConfig(cfg: UViTConfig): ModelDims {
  const d = derive(cfg);
  return {
    n: d.n,
    D: d.D,
    H: d.H,
    hidden: d.hidden,
    T: d.T,
    L: d.L,
    extras: d.extras,
    patchDim: d.patchDim,
    C: d.C,
    pixels: d.F * d.S * d.S,
    video: d.video,
    qkvBias: cfg.qkv_bias,
    mlpTimeEmbed: cfg.mlp_time_embed,
    conv: cfg.conv,
    skip: cfg.skip,
    contextTokens: d.variant === 'text' ? cfg.num_clip_token! : 0,
    clipDim: d.variant === 'text' ? cfg.clip_dim! : 0,
    numClasses: d.numClasses,
  };
}

/** Names and shapes from the model package (official state_dict names, docs/model.md §2). */
export function modelInfoFromConfig(cfg: UViTConfig): ModelInfo {
  const base = modelInfoFromShapes(dimsFromConfig(cfg), expectedParams(cfg));
  return {
    ...base,
    embedParams: embedParams(cfg),
    headParams: headParams(cfg),
    blockParams: (c) => paramsOfChainBlock(cfg, c),
  };
}
