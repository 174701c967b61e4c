// Model files for the local stack, made in process and kept: a trained model's built text encoder and decoder
// (written only when their bytes change) or the demo's seeded weights, text encoder and decoder (made only when
// missing), both by gpu-backend/serve/modelFiles.ts and never downloaded, and the stage ONNX files + plan.json
// (gpu-backend/serve/stages.ts: redone only when the model config, the weights or the split changed).
import { loadGroupConfig, type LoadedGroupConfig } from '../gpu-backend/serve/groupConfig.ts';
import { exportStages } from '../gpu-backend/serve/stages.ts';
import { prepareModelFiles } from '../gpu-backend/serve/modelFiles.ts';
import { demoFileMakers } from '../gpu-backend/demo/demo.ts';
import { resolveImageModel, type ImageModel } from '../gpu-backend/serve/catalogue.ts';

export type StageSetting = { ep: 'cpu' | 'cuda'; threads: number; deviceId: number };
export type PreparedModel = {
  modelId: string;
  /** the video group config; undefined for a catalogue image model */
  cfg?: LoadedGroupConfig;
  /** a catalogue image model with its files found and checked */
  image?: ImageModel;
  planPath: string;
  stageSettings: StageSetting[];
  /** true when nothing had to be made */
  cached: boolean;
};

/** `image`: serve this catalogue image model (models/catalogue.json name or entry file) from `weightsDir` instead of `config`. */
export async function prepareModel(o: {
  config: string; dir: string; stages: number; log: (s: string) => void; image?: { model: string; weightsDir: string };
}): Promise<PreparedModel> {
  const image = o.image && resolveImageModel(o.image.model, o.image.weightsDir, { log: o.log });
  const video = image ? undefined : loadGroupConfig(o.config);
  const cfg = image ?? video!;
  const made = video ? prepareModelFiles(video, o.log, demoFileMakers(video)).some((f) => f.made) : false;
  const { planPath, made: exported } = exportStages(cfg, o.stages, o.dir, o.log);
  const cached = !made && !exported;
  const stageSettings = Array.from({ length: o.stages }, (_, k): StageSetting => {
    const s = cfg.stages?.[k];
    return { ep: (s?.ep ?? 'cpu') as 'cpu' | 'cuda', threads: s?.threads ?? 1, deviceId: s?.device_id ?? k };
  });
  return { modelId: cfg.model_id, cfg: video, image, planPath, stageSettings, cached };
}
