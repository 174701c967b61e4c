// The model catalog of this edge: MODELS_JSON when set (validated), else the default catalog.
import { DEFAULT_MODELS, ModelConfigList, type ModelConfig } from '../shared/api/models.ts';
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
