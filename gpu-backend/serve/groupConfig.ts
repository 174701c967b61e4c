// A backend group's configuration (JSON): which model, its weights, the text encoder and decoder ONNX files, sampler
// defaults, and where each stage runs (CPU or a CUDA device). Relative paths are relative to the JSON file.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { loadConfig, type UViTConfig } from '../model/config.ts';
import { DecoderConfigSchema } from '../driver/decoder.ts';
import { EpConfigSchema } from '../driver/ort.ts';
import { TextEncoderConfigSchema } from '../driver/text/encoder.ts';
import { PREDICTIONS } from '../sampler/prediction.ts';
import { SOLVERS } from '../sampler/types.ts';

/** the latent normalisation of the RGB channels, latents = (rgb − mean) / std, which a built decoder undoes */
const normalisation = { mean: z.number().finite(), std: z.number().positive().finite() };

export const GroupConfigSchema = z
  .object({
    /** the model id the edge routes jobs by (LeaseRequest.model) */
    model_id: z.string().regex(/^[A-Za-z0-9_.:-]+$/),
    /** U-ViT config JSON (official constructor arguments + num_frames, temporal_patch_size) */
    model: z.string(),
    /** official-name safetensors, or an official .pth read directly */
    weights: z.string(),
    video: z
      .object({
        fps: z.number().int().min(1).max(120).default(8),
        /** default clip length in seconds when a request gives none */
        seconds: z.number().positive().default(16),
      })
      .strict(),
    sampler: z
      .object({
        /** dpm-solver-fast for the continuous-time checkpoints (docs/checkpoints.md) */
        solver: z.enum(SOLVERS).default('dpmpp-fast3'),
        steps: z.number().int().min(1).max(1000).default(16),
        guidance: z.number().min(0).default(1),
        cfg_mode: z.enum(['batch', 'micro']).default('batch'),
        /** what the network predicts: eps (noise, the official U-ViT), v or x0 (sampler/prediction.ts) */
        prediction: z.enum(PREDICTIONS).default('eps'),
      })
      .strict()
      .refine((s) => s.prediction === 'eps' || s.solver !== 'dpm-solver-fast', {
        message: 'prediction v or x0 needs a discrete-schedule solver (dpmpp-fast3, dpmpp-2m, ancestral or renoise)',
        path: ['prediction'],
      }),
    text_encoder: TextEncoderConfigSchema,
    decoder: DecoderConfigSchema,
    /** the in-process engine (no stage processes): threads and execution provider */
    engine: EpConfigSchema.default({ ep: 'cpu', device_id: 0 }),
    /** per stage: execution provider and CUDA device id (stage k uses stages[k]); length = number of stages */
    stages: z.array(EpConfigSchema).optional(),
    partition: z.enum(['sequential', 'folded', 'auto']).default('auto'),
    /**
     * present only for the demo: seeds from which the demo's makers (demo/demo.ts `demoFileMakers`, handed to
     * `prepareModelFiles` in serve/modelFiles.ts) make the missing files above (random, untrained)
     */
    demo: z
      .object({
        weights_seed: z.number().int().min(0),
        text_encoder_seed: z.number().int().min(0),
        decoder_seed: z.number().int().min(0),
        decoder_hidden: z.number().int().min(1).default(32),
      })
      .strict()
      .optional(),
    /**
     * a shipped trained model: `prepareModelFiles` (serve/modelFiles.ts) builds its text encoder and decoder ONNX
     * files: the word text encoder from the committed tensors `text_encoder` (safetensors: tok_emb, pos_emb,
     * ln.weight, ln.bias), and the decoder: `linear-interpolation`, the fixed frames = mean + std · (linear
     * interpolation of the RGB latents) (driver/interpolationDecoder.ts), or `shape-decoder`, the learned decoder of
     * RGB + mask latents from the committed tensors `weights` (driver/shapeDecoder.ts)
     */
    build: z
      .object({
        text_encoder: z.string(),
        decoder: z.discriminatedUnion('type', [
          z.object({ type: z.literal('linear-interpolation'), ...normalisation }).strict(),
          z.object({
            type: z.literal('shape-decoder'),
            weights: z.string().min(1),
            /** the latent channels the decoder reads, its first ones (RGB + masks; default all): channels after them
             * (the shapes model's motion channels) are the U-ViT's alone */
            channels: z.number().int().min(3).optional(),
            ...normalisation,
          }).strict(),
        ]),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((c) => !(c.demo && c.build), { message: '"demo" (seeded random files) and "build" (a trained model) exclude each other' });
export type GroupConfig = z.infer<typeof GroupConfigSchema>;

export interface LoadedGroupConfig extends GroupConfig {
  /** absolute path of the JSON file */
  path: string;
  /** the parsed U-ViT config */
  uvit: UViTConfig;
}

function abs(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function resolveTokenizer(base: string, t: GroupConfig['text_encoder']['tokenizer']): GroupConfig['text_encoder']['tokenizer'] {
  switch (t.type) {
    case 'bytes':
      return t;
    case 'clip-bpe':
      return { ...t, vocab: abs(base, t.vocab), merges: abs(base, t.merges) };
    case 'words':
      return { ...t, vocab: abs(base, t.vocab) };
  }
}

/** Reads, validates, and resolves paths; checks that the text encoder and decoder fit the model. */
export function loadGroupConfig(path: string): LoadedGroupConfig {
  const file = resolve(path);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`group config ${file}: ${(e as Error).message}`);
  }
  const r = GroupConfigSchema.safeParse(json);
  if (!r.success) {
    throw new Error(`group config ${file}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const c = r.data;
  const base = dirname(file);
  const out: LoadedGroupConfig = {
    ...c,
    path: file,
    model: abs(base, c.model),
    weights: abs(base, c.weights),
    text_encoder: {
      ...c.text_encoder,
      onnx: abs(base, c.text_encoder.onnx),
      tokenizer: resolveTokenizer(base, c.text_encoder.tokenizer),
    },
    decoder: { ...c.decoder, onnx: abs(base, c.decoder.onnx) },
    build: c.build && {
      text_encoder: abs(base, c.build.text_encoder),
      decoder: c.build.decoder.type === 'shape-decoder' ? { ...c.build.decoder, weights: abs(base, c.build.decoder.weights) } : c.build.decoder,
    },
    uvit: loadConfig(abs(base, c.model)),
  };
  const u = out.uvit;
  if (u.clip_dim === undefined || u.num_frames === undefined) {
    throw new Error(`group config ${file}: model ${out.model} must be a text-conditioned video config (clip_dim, num_frames)`);
  }
  if (out.text_encoder.num_tokens !== u.num_clip_token || out.text_encoder.dim !== u.clip_dim) {
    throw new Error(`group config ${file}: text_encoder gives [${out.text_encoder.num_tokens}, ${out.text_encoder.dim}], ` +
      `the model wants [num_clip_token ${u.num_clip_token}, clip_dim ${u.clip_dim}]`);
  }
  const d = out.build?.decoder;
  // the fixed decoder draws the latent's channels as they are, so only an RGB latent makes RGB frames
  if (d?.type === 'linear-interpolation' && u.in_chans !== 3) {
    throw new Error(`group config ${file}: the linear-interpolation decoder takes RGB latents (in_chans 3), the model's ` +
      `have ${u.in_chans} channels (a shape-decoder decodes RGB + mask latents)`);
  }
  if (d?.type === 'shape-decoder' && u.in_chans < 3) {
    throw new Error(`group config ${file}: the shape-decoder takes RGB + mask latents (in_chans >= 3), the model's have ${u.in_chans}`);
  }
  if (d?.type === 'shape-decoder' && d.channels !== undefined && d.channels > u.in_chans) {
    throw new Error(`group config ${file}: build.decoder.channels ${d.channels} is more than the model's in_chans ${u.in_chans}`);
  }
  return out;
}
