// Model catalog: what /v1/models lists and what POST /v1/videos validates against.
import * as z from 'zod';

/** A catalog entry's revision: video and image models alike (shared/lease.ts paramsHash puts it in the dedup key). */
const ModelRevision = z
  .string()
  .min(1)
  .max(128)
  .optional()
  .describe('the version of the served weights and sampler settings; a seeded request is answered from an earlier result only when it was made by the same revision');

export const ModelInfo = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    created: z.number().int(),
    owned_by: z.string(),
    sizes: z.array(z.string()).describe('accepted "WxH" sizes; the first is the default'),
    max_seconds: z.number(),
    default_seconds: z.number(),
    fps: z.object({ default: z.number().int(), min: z.number().int(), max: z.number().int() }),
    steps: z.object({ default: z.number().int(), min: z.number().int(), max: z.number().int() }),
    guidance: z.object({ default: z.number(), min: z.number(), max: z.number() }),
    result_ttl_seconds: z.number().int().min(1).optional().describe("how long this model's finished videos are kept, unless the key says otherwise"),
    revision: ModelRevision,
    backend_groups: z.number().int().describe('backend groups seen polling for this model in the last minute'),
  })
  .meta({ id: 'Model' });
export type ModelInfo = z.infer<typeof ModelInfo>;

/** An image model (POST /v1/images/generations): its sizes, conditioning and sampler ranges. */
export const ImageModelInfo = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    kind: z.literal('image'),
    created: z.number().int(),
    owned_by: z.string(),
    sizes: z.array(z.string()).describe('accepted "WxH" sizes; the first is the default'),
    conditioning: z.enum(['class', 'text', 'none']).describe('class: class_label picks the class; text: the prompt; none: unconditional'),
    num_classes: z.number().int().min(1).optional().describe('class models: class_label is in [0, num_classes)'),
    max_images: z.number().int().min(1).describe('largest n per request'),
    steps: z.object({ default: z.number().int(), min: z.number().int(), max: z.number().int() }),
    guidance: z.object({ default: z.number(), min: z.number(), max: z.number() }),
    result_ttl_seconds: z.number().int().min(1).optional(),
    revision: ModelRevision,
    backend_groups: z.number().int(),
  })
  .meta({ id: 'ImageModel' });
export type ImageModelInfo = z.infer<typeof ImageModelInfo>;
export type ImageModelConfig = Omit<ImageModelInfo, 'object' | 'backend_groups'>;
/** IMAGE_MODELS_JSON: an array of ImageModelConfig (no image model is served without it). */
export const ImageModelConfigList = z.array(ImageModelInfo.omit({ object: true, backend_groups: true }));

export const ModelList = z.object({ object: z.literal('list'), data: z.array(z.union([ModelInfo, ImageModelInfo])) }).meta({ id: 'ModelList' });

export type ModelConfig = Omit<ModelInfo, 'object' | 'backend_groups'>;

/** Default catalog; override with the MODELS_JSON var (an array of ModelConfig). */
export const DEFAULT_MODELS: ModelConfig[] = [
  {
    id: 'uvit-t2v-demo',
    created: 1_764_000_000,
    owned_by: 'uvit',
    sizes: ['64x64', '128x128', '256x256', '512x512'],
    max_seconds: 16,
    default_seconds: 4,
    fps: { default: 8, min: 1, max: 30 },
    steps: { default: 10, min: 1, max: 200 },
    guidance: { default: 3, min: 0, max: 30 },
  },
];

export const ModelConfigList = z.array(ModelInfo.omit({ object: true, backend_groups: true }));
