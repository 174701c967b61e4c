// Model catalog: what /v1/models lists and what POST /v1/videos validates against.
import * as z from 'zod';

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
    backend_groups: z.number().int().describe('backend groups seen polling for this model in the last minute'),
  })
  .meta({ id: 'Model' });
export type ModelInfo = z.infer<typeof ModelInfo>;

export const ModelList = z.object({ object: z.literal('list'), data: z.array(ModelInfo) }).meta({ id: 'ModelList' });

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
