// U-ViT model config: the official constructor arguments (libs/uvit.py, libs/uvit_t2i.py) as JSON, with the
// official defaults, plus this project's video keys (docs/model.md §8). Validation errors name the offending key.
import { readFileSync } from 'node:fs';
import * as z from 'zod';

const posInt = z.number().int().positive();

const ConfigObject = z.strictObject({
  /** optional official net name from configs/*.py: 'uvit' (libs/uvit.py) or 'uvit_t2i' (libs/uvit_t2i.py) */
  name: z.enum(['uvit', 'uvit_t2i']).optional(),
  img_size: posInt.default(224),
  patch_size: posInt.default(16),
  in_chans: posInt.default(3),
  embed_dim: posInt.default(768),
  depth: posInt.default(12),
  num_heads: posInt.default(12),
  mlp_ratio: z.number().positive().finite().default(4),
  qkv_bias: z.boolean().default(false),
  // Only None is supported: the engine hard-codes scale = head_dim^-0.5 (every official config uses None).
  qk_scale: z.unknown().optional(),
  mlp_time_embed: z.boolean().default(false),
  /** uvit.py only; > 0 => class-conditional (the embedding includes the null class), <= 0 => unconditional */
  num_classes: z.number().int().optional(),
  /** no numeric effect (training memory only); accepted so official configs parse */
  use_checkpoint: z.boolean().default(false),
  conv: z.boolean().default(true),
  // skip=false is rejected (see superRefine); the key is accepted so `skip: true` configs parse.
  skip: z.boolean().default(true),
  /** uvit_t2i.py only: text-conditioned variant */
  clip_dim: posInt.optional(),
  num_clip_token: posInt.optional(),
  /** this project's video extension (docs/model.md §8): latent frames F and temporal patch size pt */
  num_frames: posInt.optional(),
  temporal_patch_size: posInt.optional(),
});

export const UViTConfigSchema = ConfigObject.superRefine((c, ctx) => {
  const bad = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (c.qk_scale !== undefined && c.qk_scale !== null) {
    bad('qk_scale', `must be null or absent (got ${JSON.stringify(c.qk_scale)}): the engine uses the official ` +
      `default scale head_dim^-0.5 (qk_scale=None in every official config); a custom scale is not supported`);
  }
  if (c.embed_dim % c.num_heads !== 0) {
    bad('embed_dim', `embed_dim ${c.embed_dim} must be divisible by num_heads ${c.num_heads}`);
  }
  if (c.img_size % c.patch_size !== 0) {
    bad('img_size', `img_size ${c.img_size} must be divisible by patch_size ${c.patch_size}`);
  }
  if (Math.trunc(c.embed_dim * c.mlp_ratio) < 1) {
    bad('mlp_ratio', `int(embed_dim*mlp_ratio) = int(${c.embed_dim}*${c.mlp_ratio}) must be >= 1`);
  }
  if (!c.skip) {
    bad('skip', 'skip=false is not supported: the partition contract (gpu-backend/partition/types.ts) routes a long ' +
      'skip into every out_block, and every official config uses skip=true');
  }
  const text = c.clip_dim !== undefined || c.name === 'uvit_t2i';
  if (text && c.num_classes !== undefined) {
    bad('num_classes', 'num_classes and clip_dim are mutually exclusive: num_classes belongs to libs/uvit.py, ' +
      'clip_dim/num_clip_token to the text variant libs/uvit_t2i.py');
  }
  if (c.name === 'uvit' && c.clip_dim !== undefined) {
    bad('clip_dim', "clip_dim belongs to the text variant (name 'uvit_t2i'), but name is 'uvit'");
  }
  if (!text && c.num_clip_token !== undefined) {
    bad('num_clip_token', 'num_clip_token requires clip_dim (the text variant)');
  }
  if (c.temporal_patch_size !== undefined && c.num_frames === undefined) {
    bad('temporal_patch_size', 'temporal_patch_size requires num_frames (the video extension, docs/model.md §8)');
  }
  if (c.num_frames !== undefined) {
    const pt = c.temporal_patch_size ?? 1;
    if (c.num_frames % pt !== 0) {
      bad('num_frames', `num_frames ${c.num_frames} must be divisible by temporal_patch_size ${pt}`);
    }
  }
}).transform((c) => {
  const text = c.clip_dim !== undefined || c.name === 'uvit_t2i';
  const { qk_scale: _q, ...rest } = c;
  const out = { ...rest, num_classes: text ? undefined : (c.num_classes ?? -1) } as UViTConfigOut;
  if (text) {
    out.clip_dim = c.clip_dim ?? 768; // uvit_t2i.py defaults
    out.num_clip_token = c.num_clip_token ?? 77;
    delete out.num_classes;
  } else {
    delete out.clip_dim;
    delete out.num_clip_token;
  }
  if (c.num_frames !== undefined) out.temporal_patch_size = c.temporal_patch_size ?? 1;
  return out;
});

interface UViTConfigOut {
  name?: 'uvit' | 'uvit_t2i';
  img_size: number;
  patch_size: number;
  in_chans: number;
  embed_dim: number;
  depth: number;
  num_heads: number;
  mlp_ratio: number;
  qkv_bias: boolean;
  mlp_time_embed: boolean;
  /** present for libs/uvit.py configs (default -1); absent for the text variant */
  num_classes?: number;
  use_checkpoint: boolean;
  conv: boolean;
  skip: boolean;
  /** present (with num_clip_token) iff text variant */
  clip_dim?: number;
  num_clip_token?: number;
  /** present (with temporal_patch_size) iff video */
  num_frames?: number;
  temporal_patch_size?: number;
}

export type UViTConfig = UViTConfigOut;

function formatIssues(err: z.ZodError, where: string): string {
  const lines = err.issues.map((i) => {
    const path = i.path.length ? i.path.map(String).join('.') : '(root)';
    if (i.code === 'unrecognized_keys') {
      return `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')} ` +
        `(allowed: ${Object.keys(ConfigObject.shape).join(', ')})`;
    }
    return `${path}: ${i.message}`;
  });
  return `invalid U-ViT config${where}: ${lines.join('; ')}`;
}

/** Validate a config object; throws Error naming every bad key. */
export function parseConfig(json: unknown, where = ''): UViTConfig {
  const r = UViTConfigSchema.safeParse(json);
  if (!r.success) throw new Error(formatIssues(r.error, where));
  return r.data;
}

/** Read and validate a config JSON file. */
export function loadConfig(path: string): UViTConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read config ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`config ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(json, ` ${path}`);
}

export interface Derived {
  variant: 'class' | 'text' | 'uncond';
  video: boolean;
  /** depth // 2: blocks in in_blocks and in out_blocks */
  n: number;
  /** 2n + 1 */
  numBlocks: number;
  D: number;
  H: number;
  Dh: number;
  /** int(D * mlp_ratio) */
  hidden: number;
  C: number;
  p: number;
  /** temporal patch size, 1 for 2-D */
  pt: number;
  S: number;
  /** S / p */
  grid: number;
  /** latent frames, 1 for 2-D */
  F: number;
  /** grid^2 */
  tokensPerFrame: number;
  /** (F / pt) * grid^2 at full length */
  L: number;
  /** tokens before the patches: class 2 [label,time], uncond 1 [time], text 1+num_clip_token [time,ctx...] */
  extras: number;
  /** extras + L */
  T: number;
  /** C * pt * p * p */
  patchDim: number;
  /** classes incl. the null class (class variant), else 0 */
  numClasses: number;
  /** the null (unconditional) label = numClasses - 1, class variant only, else -1 */
  nullClass: number;
  /** input x shape: [B,C,S,S] for 2-D, [B,C,frames,S,S] for video (frames defaults to F; must be a multiple of pt, <= F) */
  inputShape(B: number, frames?: number): number[];
  /** patch tokens for a clip of `frames` latent frames (2-D: frames ignored) */
  tokensFor(frames?: number): number;
}

export function derive(cfg: UViTConfig): Derived {
  const variant = cfg.clip_dim !== undefined ? 'text' : (cfg.num_classes ?? -1) > 0 ? 'class' : 'uncond';
  const video = cfg.num_frames !== undefined;
  const n = Math.floor(cfg.depth / 2);
  const D = cfg.embed_dim;
  const H = cfg.num_heads;
  const p = cfg.patch_size;
  const pt = video ? (cfg.temporal_patch_size ?? 1) : 1;
  const S = cfg.img_size;
  const C = cfg.in_chans;
  const grid = S / p;
  const F = video ? cfg.num_frames! : 1;
  const tokensPerFrame = grid * grid;
  const extras = variant === 'class' ? 2 : variant === 'text' ? 1 + cfg.num_clip_token! : 1;
  const checkFrames = (frames: number) => {
    if (!Number.isInteger(frames) || frames < pt || frames > F || frames % pt !== 0) {
      throw new Error(`clip of ${frames} latent frames is invalid: need a multiple of temporal_patch_size ${pt} ` +
        `between ${pt} and num_frames ${F}`);
    }
  };
  const L = (F / pt) * tokensPerFrame;
  return {
    variant,
    video,
    n,
    numBlocks: 2 * n + 1,
    D,
    H,
    Dh: D / H,
    hidden: Math.trunc(D * cfg.mlp_ratio),
    C,
    p,
    pt,
    S,
    grid,
    F,
    tokensPerFrame,
    L,
    extras,
    T: extras + L,
    patchDim: C * pt * p * p,
    numClasses: variant === 'class' ? cfg.num_classes! : 0,
    nullClass: variant === 'class' ? cfg.num_classes! - 1 : -1,
    inputShape(B: number, frames?: number) {
      if (!video) return [B, C, S, S];
      const f = frames ?? F;
      checkFrames(f);
      return [B, C, f, S, S];
    },
    tokensFor(frames?: number) {
      if (!video) return tokensPerFrame;
      const f = frames ?? F;
      checkFrames(f);
      return (f / pt) * tokensPerFrame;
    },
  };
}
