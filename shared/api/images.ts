// Public image API objects (the OpenAI Images API `images.generate` shape plus our extensions) and request
// canonicalisation. An image job is a job of kind 'image' in the same queue as videos; its PNGs are the artifacts
// image-0 … image-{n-1}.
import * as z from 'zod';
import { type JobSpec, MAX_IMAGES_PER_JOB } from '../lease.ts';
import type { ImageModelConfig } from './models.ts';
import { jobFields, outOfRange, Prompt, type Refused, sizeRefused } from './videos.ts';

export const ResponseFormat = z.enum(['url', 'b64_json']);
export type ResponseFormat = z.infer<typeof ResponseFormat>;

export const CreateImageBody = z
  .strictObject({
    prompt: Prompt.describe('text models: the prompt; class models: "207" or "class 207" when class_label is not given'),
    model: z.string().min(1).max(128).optional(),
    n: z.number().int('n must be an integer').min(1).max(MAX_IMAGES_PER_JOB).optional().describe('images to make, default 1'),
    size: z.string().regex(/^\d{1,5}x\d{1,5}$/, 'size must be "WIDTHxHEIGHT", e.g. "256x256"').optional(),
    response_format: ResponseFormat.optional().describe('url (default): CDN URLs of the PNGs; b64_json: the PNGs inline'),
    user: z.string().max(256).optional().describe('accepted for OpenAI compatibility; not stored'),
    // extensions
    class_label: z.number().int('class_label must be an integer').min(0).optional().describe('class models: the class index'),
    seed: z.number().int('seed must be an integer').min(0).max(2 ** 32 - 1).optional().describe('image i starts from noise seed + i'),
    steps: z.number().int('steps must be an integer').min(1).max(1000).optional(),
    guidance: z.number().min(0).max(100).optional(),
  })
  .meta({ id: 'CreateImageRequest' });
export type CreateImageBody = z.infer<typeof CreateImageBody>;

/** Fields that multipart/form-data carries as strings but the schema wants as numbers. */
export const IMAGE_NUMERIC_FIELDS = ['n', 'class_label', 'seed', 'steps', 'guidance'] as const;

export const ImageData = z
  .object({
    url: z.string().optional().describe('response_format url: the unguessable, cacheable CDN URL of the PNG'),
    b64_json: z.string().optional().describe('response_format b64_json: the PNG, base64'),
    sha256: z.string(),
    bytes: z.number().int(),
  })
  .meta({ id: 'ImageData' });
export type ImageData = z.infer<typeof ImageData>;

/**
 * An image generation job. Completed, it is also an OpenAI ImagesResponse (`created` and `data`); until then `data`
 * is empty and the job is polled at GET /v1/images/generations/{id}.
 */
export const ImageGeneration = z
  .object({
    id: z.string(),
    object: z.literal('image.generation'),
    created: z.number().int().describe('unix seconds'),
    ...jobFields,
    n: z.number().int(),
    class_label: z.number().int().nullable(),
    data: z.array(ImageData),
  })
  .meta({ id: 'ImageGeneration' });
export type ImageGeneration = z.infer<typeof ImageGeneration>;

export const IMAGE_ID = /^img_[0-9a-f]{32}$/;

/** A class index given as the prompt: "207" or "class 207" (no offline list of class names is shipped). */
function classFromPrompt(prompt: string): number | undefined {
  const m = /^(?:class\s+)?(\d{1,6})$/i.exec(prompt);
  return m ? Number(m[1]) : undefined;
}

/** Canonical job parameters of a validated body against its image model; `seed` must be resolved first. */
export function canonicalImageParams(
  body: CreateImageBody,
  model: ImageModelConfig,
  seed: number,
): { ok: true; spec: Omit<JobSpec, 'id' | 'params_hash'> } | Refused {
  const size = body.size ?? model.sizes[0];
  const n = body.n ?? 1;
  const steps = body.steps ?? model.steps.default;
  const guidance = body.guidance ?? model.guidance.default;
  const refused = sizeRefused(size, model) ?? outOfRange('n', n, { min: 1, max: model.max_images }, model.id)
    ?? outOfRange('steps', steps, model.steps, model.id) ?? outOfRange('guidance', guidance, model.guidance, model.id);
  if (refused) return refused;
  let class_label: number | undefined;
  if (model.conditioning === 'class') {
    class_label = body.class_label ?? classFromPrompt(body.prompt);
    const classes = model.num_classes ?? 0;
    if (class_label === undefined)
      return { ok: false, path: 'class_label', message: `model ${model.id} is class-conditional: give class_label, or a class index as the prompt ("207")` };
    if (class_label >= classes) return { ok: false, path: 'class_label', message: `class_label must be in [0, ${classes - 1}] for ${model.id}, got ${class_label}` };
  } else if (body.class_label !== undefined) {
    return { ok: false, path: 'class_label', message: `model ${model.id} is not class-conditional; class_label does not apply` };
  }
  const [width, height] = size.split('x').map(Number);
  return {
    ok: true,
    spec: {
      kind: 'image', model: model.id, prompt: body.prompt, n, size, width, height, seed, steps, guidance,
      ...(class_label === undefined ? {} : { class_label }),
      // an image is one still frame
      seconds: 1, fps: 1, num_frames: 1,
    },
  };
}

/** Stable JSON of the parameters that determine the images (key order fixed); a class model's prompt does not. */
export function canonicalImageJson(spec: Omit<JobSpec, 'id' | 'params_hash'>): string {
  const { model, n, size, seed, steps, guidance } = spec;
  const conditioning = spec.class_label === undefined ? { prompt: spec.prompt } : { class_label: spec.class_label };
  return JSON.stringify({ kind: 'image', model, ...conditioning, n, size, seed, steps, guidance });
}
