// The image-model catalogue (models/catalogue.json): for each servable U-ViT image checkpoint, its network config,
// sampler, output, and the files a user puts in a weights directory, with SHA-256 checksums where known. An entry
// names an official config (gpu-backend/model/officialConfigs.ts) or spells its own (tests: small seeded models).
// `resolveImageModel` finds every file, and reports every missing or mismatched one in a single error.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { autoencoderParams, type AutoencoderConfig, OFFICIAL_AUTOENCODER } from '../model/build/autoencoder.ts';
import { CLIP_VIT_L14_TEXT, type ClipTextConfig } from '../model/build/clipText.ts';
import { derive, parseConfig, type UViTConfig } from '../model/config.ts';
import { officialModel } from '../model/officialConfigs.ts';
import { openTensorFile, tensorProblems, type TensorReader } from '../model/tensorFile.ts';
import { expectedParams } from '../model/weights.ts';
import { SOLVERS, type SolverName } from '../sampler/types.ts';
import { EpConfigSchema } from '../driver/ort.ts';
import { checkClipText } from '../engine/clipText.ts';

/** models/catalogue.json of this checkout */
export const CATALOGUE = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/catalogue.json');

const FileRef = z
  .object({
    /** the file's name in the weights directory (a relative path) */
    name: z.string().min(1).refine((s) => !isAbsolute(s) && !s.split(/[\\/]/).includes('..'), 'a relative path inside the weights directory'),
    /** hex SHA-256 of the published file; null where it is not known */
    sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().default(null),
  })
  .strict();

const Entry = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.:-]+$/),
    /** an official config name; its network, sampler and output come from officialConfigs.ts */
    official: z.string().optional(),
    /** or all of these (an entry without `official`) */
    nnet: z.record(z.string(), z.unknown()).optional(),
    solver: z.enum(SOLVERS).optional(),
    steps: z.number().int().min(1).max(1000).optional(),
    guidance: z.number().min(0).optional(),
    resolution: z.number().int().min(1).optional(),
    /** latent models: the autoencoder's configuration (default autoencoder_kl.pth's) and scale factor */
    autoencoder: z.object({ config: z.record(z.string(), z.unknown()).optional(), scale_factor: z.number().positive().optional() }).strict().optional(),
    /** text models: the CLIP text tower's configuration (default ViT-L/14's) */
    clip: z.record(z.string(), z.unknown()).optional(),
    files: z
      .object({
        nnet: FileRef,
        autoencoder: FileRef.optional(),
        clip_weights: FileRef.optional(),
        clip_vocab: FileRef.optional(),
        clip_merges: FileRef.optional(),
      })
      .strict(),
    /** the in-process engine and the stages: threads and execution provider */
    engine: EpConfigSchema.default({ ep: 'cpu', device_id: 0 }),
    stages: z.array(EpConfigSchema).optional(),
    partition: z.enum(['sequential', 'folded', 'auto']).default('auto'),
    cfg_mode: z.enum(['batch', 'micro']).default('batch'),
    /** most images per request */
    max_images: z.number().int().min(1).max(10).default(4),
  })
  .strict();
type Entry = z.infer<typeof Entry>;

export const CatalogueSchema = z.array(Entry);

/** A catalogue model with every file found and checked: what a backend group serves. */
export interface ImageModel {
  model_id: string;
  uvit: UViTConfig;
  /** the network weights (.pth or safetensors) */
  weights: string;
  solver: SolverName;
  steps: number;
  guidance: number;
  /** image side in pixels */
  resolution: number;
  autoencoder?: { path: string; config: AutoencoderConfig };
  clip?: { weights: string; config: ClipTextConfig; vocab: string; merges: string };
  engine: Entry['engine'];
  stages?: Entry['stages'];
  partition: Entry['partition'];
  cfg_mode: Entry['cfg_mode'];
  max_images: number;
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${what} ${path}: ${(e as Error).message}`);
  }
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** The catalogue entry `name` of `catalogue` (default models/catalogue.json), or the entry in a JSON file `name`. */
export function catalogueEntry(name: string, catalogue = CATALOGUE): Entry {
  if (name.endsWith('.json')) {
    const r = Entry.safeParse(readJson(name, 'catalogue entry'));
    if (!r.success) throw new Error(`catalogue entry ${name}: ${issues(r.error)}`);
    return r.data;
  }
  const r = CatalogueSchema.safeParse(readJson(catalogue, 'catalogue'));
  if (!r.success) throw new Error(`catalogue ${catalogue}: ${issues(r.error)}`);
  const e = r.data.find((x) => x.id === name);
  if (!e) throw new Error(`model "${name}" is not in the catalogue ${catalogue} (known: ${r.data.map((x) => x.id).join(', ')})`);
  return e;
}

/** The network, sampler and output of an entry: from its official config, overridden by what it spells out. */
function describe(e: Entry) {
  const off = e.official === undefined ? undefined : officialModel(e.official);
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`catalogue entry ${e.id}: "${what}" is needed (or "official": a config name)`);
    return v;
  };
  const uvit = parseConfig(need(e.nnet ?? off?.nnet, 'nnet'), ` (catalogue entry ${e.id})`);
  const latent = e.autoencoder !== undefined || off?.latent === true;
  return {
    uvit,
    solver: need(e.solver ?? off?.solver, 'solver'),
    steps: need(e.steps ?? off?.steps, 'steps'),
    guidance: need(e.guidance ?? off?.guidance, 'guidance'),
    resolution: need(e.resolution ?? off?.resolution, 'resolution'),
    autoencoder: latent
      ? { ...OFFICIAL_AUTOENCODER, ...(e.autoencoder?.config as Partial<AutoencoderConfig>), scale_factor: e.autoencoder?.scale_factor ?? off?.scaleFactor ?? OFFICIAL_AUTOENCODER.scale_factor }
      : undefined,
    clip: derive(uvit).variant === 'text' ? { ...CLIP_VIT_L14_TEXT, ...(e.clip as Partial<ClipTextConfig>) } : undefined,
  };
}

function sha256File(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 22);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** What is wrong with a tensor file (it does not open, or `check` finds problems). */
function tensorFileProblems(path: string, check: (f: TensorReader) => string[]): string[] {
  try {
    const f = openTensorFile(path);
    try {
      return check(f);
    } finally {
      f.close();
    }
  } catch (e) {
    return [(e as Error).message];
  }
}

/**
 * The catalogue model `name` (or a JSON entry file) served from the files in `weightsDir`. Every file is looked for,
 * its checksum compared where the catalogue has one, and its tensors checked against the config; one error lists
 * every missing or mismatched file.
 */
export function resolveImageModel(name: string, weightsDir: string, opts: { catalogue?: string; log?: (s: string) => void } = {}): ImageModel {
  const e = catalogueEntry(name, opts.catalogue);
  const d = describe(e);
  const dir = resolve(weightsDir);
  const problems: string[] = [];
  const file = (role: keyof Entry['files'], check?: (f: TensorReader) => string[]): string => {
    const ref = e.files[role];
    if (!ref) {
      problems.push(`the catalogue entry names no ${role} file`);
      return '';
    }
    const path = join(dir, ref.name);
    if (!existsSync(path)) {
      problems.push(`missing ${ref.name} (${role})`);
      return path;
    }
    if (ref.sha256) {
      const got = sha256File(path);
      if (got !== ref.sha256) problems.push(`${ref.name} (${role}) has sha256 ${got}, the catalogue expects ${ref.sha256}`);
    } else opts.log?.(`${ref.name}: the catalogue has no checksum for it; its tensors are checked against the config`);
    if (check) for (const p of tensorFileProblems(path, check)) problems.push(`${ref.name} (${role}) does not match: ${p}`);
    return path;
  };
  const weights = file('nnet', (f) => tensorProblems(f, expectedParams(d.uvit)));
  const autoencoder = d.autoencoder && { path: file('autoencoder', (f) => tensorProblems(f, autoencoderParams(d.autoencoder!))), config: d.autoencoder };
  const clip = d.clip && {
    weights: file('clip_weights', (f) => {
      checkClipText(f, d.clip!); // throws with every problem of the text tower
      return [];
    }),
    config: d.clip,
    vocab: file('clip_vocab'),
    merges: file('clip_merges'),
  };
  if (problems.length) throw new Error(`model ${e.id} cannot be served from ${dir}:\n  ${problems.join('\n  ')}`);
  return {
    model_id: e.id, uvit: d.uvit, weights, solver: d.solver, steps: d.steps, guidance: d.guidance, resolution: d.resolution,
    autoencoder, clip, engine: e.engine, stages: e.stages, partition: e.partition, cfg_mode: e.cfg_mode, max_images: e.max_images,
  };
}
