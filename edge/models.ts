// The model catalog of this edge: MODELS_JSON when set (validated), else the default catalog.
import { DEFAULT_MODELS, ImageModelConfigList, ModelConfigList, type ImageModelConfig, type ModelConfig } from '../shared/api/models.ts';
import type { Vars } from './vars.ts';

let cached: { src: string | undefined; models: ModelConfig[] } | null = null;

export function catalog(env: Vars): ModelConfig[] {
  if (cached && cached.src === env.MODELS_JSON) return cached.models;
  let models = DEFAULT_MODELS;
  if (env.MODELS_JSON) {
    const parsed = ModelConfigList.safeParse(JSON.parse(env.MODELS_JSON));
    if (!parsed.success) throw new Error(`MODELS_JSON is invalid: ${parsed.error.message}`);
    models = parsed.data;
  }
  cached = { src: env.MODELS_JSON, models };
  return models;
}

export function findModel(env: Vars, id: string | undefined): ModelConfig | undefined {
  const all = catalog(env);
  return id === undefined ? all[0] : all.find((m) => m.id === id);
}

let cachedImages: { src: string | undefined; models: ImageModelConfig[] } | null = null;

/** The image models of this edge: IMAGE_MODELS_JSON (validated); none when unset. */
export function imageCatalog(env: Vars): ImageModelConfig[] {
  if (cachedImages && cachedImages.src === env.IMAGE_MODELS_JSON) return cachedImages.models;
  let models: ImageModelConfig[] = [];
  if (env.IMAGE_MODELS_JSON) {
    const parsed = ImageModelConfigList.safeParse(JSON.parse(env.IMAGE_MODELS_JSON));
    if (!parsed.success) throw new Error(`IMAGE_MODELS_JSON is invalid: ${parsed.error.message}`);
    models = parsed.data;
  }
  cachedImages = { src: env.IMAGE_MODELS_JSON, models };
  return models;
}

export function findImageModel(env: Vars, id: string | undefined): ImageModelConfig | undefined {
  const all = imageCatalog(env);
  return id === undefined ? all[0] : all.find((m) => m.id === id);
}

/** Whether backends may lease jobs of `id`: a video or an image model of the catalog. */
export function servedModel(env: Vars, id: string): boolean {
  return findModel(env, id) !== undefined || findImageModel(env, id) !== undefined;
}
