// The model catalogs of this edge: MODELS_JSON when set (validated), else the default catalog; IMAGE_MODELS_JSON.
import type * as z from 'zod';
import { DEFAULT_MODELS, ImageModelConfigList, ModelConfigList, type ImageModelConfig, type ModelConfig } from '../shared/api/models.ts';
import type { Vars } from './vars.ts';

/**
 * A catalog read from one JSON variable, validated, parsed once per value of the variable (the isolate keeps it);
 * `fallback` when the variable is unset.
 */
function cachedCatalog<T>(name: string, schema: z.ZodType<T[]>, fallback: T[]): (src: string | undefined) => T[] {
  let cached: { src: string | undefined; models: T[] } | null = null;
  return (src) => {
    if (cached && cached.src === src) return cached.models;
    let models = fallback;
    if (src) {
      const parsed = schema.safeParse(JSON.parse(src));
      if (!parsed.success) throw new Error(`${name} is invalid: ${parsed.error.message}`);
      models = parsed.data;
    }
    cached = { src, models };
    return models;
  };
}

const videoModels = cachedCatalog('MODELS_JSON', ModelConfigList, DEFAULT_MODELS);
const imageModels = cachedCatalog<ImageModelConfig>('IMAGE_MODELS_JSON', ImageModelConfigList, []);

export function catalog(env: Vars): ModelConfig[] {
  return videoModels(env.MODELS_JSON);
}

export function findModel(env: Vars, id: string | undefined): ModelConfig | undefined {
  const all = catalog(env);
  return id === undefined ? all[0] : all.find((m) => m.id === id);
}

/** The image models of this edge: IMAGE_MODELS_JSON (validated); none when unset. */
export function imageCatalog(env: Vars): ImageModelConfig[] {
  return imageModels(env.IMAGE_MODELS_JSON);
}

export function findImageModel(env: Vars, id: string | undefined): ImageModelConfig | undefined {
  const all = imageCatalog(env);
  return id === undefined ? all[0] : all.find((m) => m.id === id);
}

/** Whether backends may lease jobs of `id`: a video or an image model of the catalog. */
export function servedModel(env: Vars, id: string): boolean {
  return findModel(env, id) !== undefined || findImageModel(env, id) !== undefined;
}
