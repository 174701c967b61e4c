// The published U-ViT checkpoints (official README and configs/*.py): the network's constructor arguments and how the
// official evaluation script samples it. `uvit convert --config NAME` and the model catalogue read these.
import type { SolverName } from '../sampler/types.ts';

export interface OfficialModel {
  /** config name, as configs/<name>.py (mscoco_uvit_small_deep: that config with nnet.depth=16) */
  name: string;
  /** checkpoint file name the README's evaluation commands use */
  file: string;
  /** config.nnet: the constructor arguments (libs/uvit.py, or libs/uvit_t2i.py for name 'uvit_t2i') */
  nnet: Record<string, unknown>;
  /** the official evaluation script, which fixes the time parameterisation */
  evalScript: 'eval.py' | 'eval_ldm.py' | 'eval_ldm_discrete.py' | 'eval_t2i_discrete.py';
  /** this project's solver for it: continuous time -> dpm-solver-fast, discrete time -> dpmpp-fast3 */
  solver: SolverName;
  /** config.sample.sample_steps for the DPM-Solver scripts (the pixel CIFAR-10 / CelebA configs use a 1000-step SDE) */
  steps: number;
  /** config.sample.scale (classifier-free guidance), 0 without */
  guidance: number;
  /** latent models decode with autoencoder_kl.pth; pixel models output images directly */
  latent: boolean;
  /** config.autoencoder.scale_factor of latent models (FrozenAutoencoderKL's default 0.18215 unless the config says) */
  scaleFactor?: number;
  /** image side in pixels */
  resolution: number;
}

const S = { embed_dim: 512, depth: 12, num_heads: 8, mlp_ratio: 4, qkv_bias: false, mlp_time_embed: false };
const M = { embed_dim: 768, depth: 16, num_heads: 12, mlp_ratio: 4, qkv_bias: false, mlp_time_embed: false };
const L = { embed_dim: 1024, depth: 20, num_heads: 16, mlp_ratio: 4, qkv_bias: false, mlp_time_embed: false };
const H = { embed_dim: 1152, depth: 28, num_heads: 16, mlp_ratio: 4, qkv_bias: false, mlp_time_embed: false };
const t2i = { name: 'uvit_t2i', img_size: 32, in_chans: 4, patch_size: 2, ...S, clip_dim: 768, num_clip_token: 77 };

export const OFFICIAL_MODELS: readonly OfficialModel[] = [
  { name: 'cifar10_uvit_small', file: 'cifar10_uvit_small.pth', nnet: { name: 'uvit', img_size: 32, patch_size: 2, ...S, num_classes: -1 },
    evalScript: 'eval.py', solver: 'dpm-solver-fast', steps: 50, guidance: 0, latent: false, resolution: 32 },
  { name: 'celeba64_uvit_small', file: 'celeba64_uvit_small.pth', nnet: { name: 'uvit', img_size: 64, patch_size: 4, ...S, num_classes: -1 },
    evalScript: 'eval.py', solver: 'dpm-solver-fast', steps: 50, guidance: 0, latent: false, resolution: 64 },
  { name: 'imagenet64_uvit_mid', file: 'imagenet64_uvit_mid.pth', nnet: { name: 'uvit', img_size: 64, patch_size: 4, ...M, num_classes: 1000 },
    evalScript: 'eval.py', solver: 'dpm-solver-fast', steps: 50, guidance: 0, latent: false, resolution: 64 },
  { name: 'imagenet64_uvit_large', file: 'imagenet64_uvit_large.pth', nnet: { name: 'uvit', img_size: 64, patch_size: 4, ...L, num_classes: 1000 },
    evalScript: 'eval.py', solver: 'dpm-solver-fast', steps: 50, guidance: 0, latent: false, resolution: 64 },
  { name: 'imagenet256_uvit_large', file: 'imagenet256_uvit_large.pth', nnet: { name: 'uvit', img_size: 32, patch_size: 2, in_chans: 4, ...L, num_classes: 1001 },
    evalScript: 'eval_ldm.py', solver: 'dpm-solver-fast', steps: 50, guidance: 0.4, latent: true, scaleFactor: 0.18215, resolution: 256 },
  { name: 'imagenet256_uvit_huge', file: 'imagenet256_uvit_huge.pth', nnet: { name: 'uvit', img_size: 32, patch_size: 2, in_chans: 4, ...H, num_classes: 1001, conv: false },
    evalScript: 'eval_ldm_discrete.py', solver: 'dpmpp-fast3', steps: 50, guidance: 0.4, latent: true, scaleFactor: 0.18215, resolution: 256 },
  { name: 'imagenet512_uvit_large', file: 'imagenet512_uvit_large.pth', nnet: { name: 'uvit', img_size: 64, patch_size: 4, in_chans: 4, ...L, num_classes: 1001 },
    evalScript: 'eval_ldm.py', solver: 'dpm-solver-fast', steps: 50, guidance: 0.7, latent: true, scaleFactor: 0.18215, resolution: 512 },
  { name: 'imagenet512_uvit_huge', file: 'imagenet512_uvit_huge.pth', nnet: { name: 'uvit', img_size: 64, patch_size: 4, in_chans: 4, ...H, num_classes: 1001, conv: false },
    evalScript: 'eval_ldm_discrete.py', solver: 'dpmpp-fast3', steps: 50, guidance: 0.7, latent: true, scaleFactor: 0.18215, resolution: 512 },
  { name: 'mscoco_uvit_small', file: 'mscoco_uvit_small.pth', nnet: t2i,
    evalScript: 'eval_t2i_discrete.py', solver: 'dpmpp-fast3', steps: 50, guidance: 1, latent: true, scaleFactor: 0.2301, resolution: 256 },
  { name: 'mscoco_uvit_small_deep', file: 'mscoco_uvit_small_deep.pth', nnet: { ...t2i, depth: 16 },
    evalScript: 'eval_t2i_discrete.py', solver: 'dpmpp-fast3', steps: 50, guidance: 1, latent: true, scaleFactor: 0.2301, resolution: 256 },
];

export function officialModel(name: string): OfficialModel {
  const m = OFFICIAL_MODELS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown official config "${name}" (known: ${OFFICIAL_MODELS.map((x) => x.name).join(', ')})`);
  return m;
}
