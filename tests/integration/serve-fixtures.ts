// A tiny text-to-video group config (model, seeded demo files made on first use) for the driver and worker tests.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The tiny text-to-video U-ViT (also used by the chaos suite). */
export const TINY_MODEL = {
  img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 2, num_heads: 2, mlp_ratio: 4, qkv_bias: false,
  mlp_time_embed: false, conv: true, skip: true, clip_dim: 16, num_clip_token: 4, num_frames: 4, temporal_patch_size: 2,
};

/** The group config around TINY_MODEL (paths relative to the folder holding model.json); `overrides` replace keys. */
export function tinyGroup(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_id: 'uvit-tiny', model: 'model.json', weights: 'data/w.safetensors',
    video: { fps: 4, seconds: 2 },
    sampler: { solver: 'dpmpp-fast3', steps: 3, guidance: 2, cfg_mode: 'batch' },
    text_encoder: { onnx: 'data/te.onnx', tokenizer: { type: 'bytes' }, num_tokens: 4, dim: 16 },
    decoder: { onnx: 'data/dec.onnx', temporal: 2, spatial: 4 },
    engine: { ep: 'cpu', threads: 1 },
    demo: { weights_seed: 0, text_encoder_seed: 1, decoder_seed: 2, decoder_hidden: 4 },
    ...overrides,
  };
}

/** Writes model.json + group.json into `dir`; returns the group.json path. Clips: up to 8 frames of 32×32 at 4 fps. */
export function writeTinyGroup(dir: string, overrides: Record<string, unknown> = {}): string {
  writeFileSync(join(dir, 'model.json'), JSON.stringify(TINY_MODEL));
  const group = tinyGroup(overrides);
  const p = join(dir, 'group.json');
  writeFileSync(p, JSON.stringify(group));
  return p;
}
