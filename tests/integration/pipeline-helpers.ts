// Set-up for the stage-pipeline integration tests: golden and small video configs, weights, inputs (plan files and
// the deterministic filler: gpu-backend/pipeline/setup.ts, shared with bench:pipeline).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../../shared/tensor.ts';
import { parseConfig, derive, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { initWeightsToFile } from '../../gpu-backend/model/initWeights.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { det } from '../../gpu-backend/pipeline/setup.ts';
import type { ModelInputs } from '../../gpu-backend/sampler/guidance.ts';
import { GOLDEN_DIR } from '../golden.ts';

export { maxAbsDiff } from '../parity/referenceUtil.ts';

export const GOLDEN = GOLDEN_DIR;

export function goldenConfig(): UViTConfig {
  const c = JSON.parse(readFileSync(join(GOLDEN, 'case.json'), 'utf8')) as { config: unknown };
  return parseConfig(c.config, ' (golden a_cls_conv)');
}

export function goldenInputs(): ModelInputs {
  return {
    x: readNpy(join(GOLDEN, 'input_x.npy')) as Tensor<'float32'>,
    timesteps: readNpy(join(GOLDEN, 'input_timesteps.npy')) as Tensor<'float32'>,
    y: readNpy(join(GOLDEN, 'input_y.npy')) as Tensor<'int64'>,
  };
}

/** a small text-conditioned video config (space-time patches, 5 chain blocks) */
export const SMALL_VIDEO = {
  img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 4, num_heads: 2, mlp_ratio: 4,
  qkv_bias: false, mlp_time_embed: false, conv: true, skip: true,
  clip_dim: 16, num_clip_token: 4, num_frames: 4, temporal_patch_size: 2,
};

/** deterministic inputs for any config: x [B,C,(F,)S,S], timesteps [B], y or context */
export function inputsFor(cfg: UViTConfig, B: number, seed: number, t = 500): ModelInputs {
  const d = derive(cfg);
  const dims = d.video ? [B, cfg.in_chans, cfg.num_frames!, cfg.img_size, cfg.img_size] : [B, cfg.in_chans, cfg.img_size, cfg.img_size];
  const n = dims.reduce((a, b) => a * b, 1);
  const inp: ModelInputs = {
    x: { dtype: 'float32', dims, data: det(n, seed) },
    timesteps: { dtype: 'float32', dims: [B], data: new Float32Array(B).fill(t) },
  };
  if (cfg.clip_dim) {
    const k = cfg.num_clip_token!;
    inp.context = { dtype: 'float32', dims: [B, k, cfg.clip_dim], data: det(B * k * cfg.clip_dim, seed + 99) };
  } else if (cfg.num_classes && cfg.num_classes > 0) {
    inp.y = { dtype: 'int64', dims: [B], data: BigInt64Array.from({ length: B }, (_, i) => BigInt((seed + i) % cfg.num_classes!)) };
  }
  return inp;
}

export function videoSetup(dir: string, cfgJson: object = SMALL_VIDEO, seed = 7): { cfg: UViTConfig; weights: string } {
  mkdirSync(dir, { recursive: true });
  const cfg = parseConfig(cfgJson, ' (test video config)');
  const weights = join(dir, 'weights.safetensors');
  initWeightsToFile(cfg, seed, weights);
  return { cfg, weights };
}
