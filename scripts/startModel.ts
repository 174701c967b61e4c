// Model files for the local stack, made with the project's own CLI and cached: weights by `uvit init-weights` (from
// the group config's demo seed; never downloaded), the demo text encoder / decoder ONNX (seeded, from the driver's
// prepareDemo), and the stage ONNX files + plan.json by `uvit export`. A stamp keeps the export from being redone
// unless the model config, the weights or the split changed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGroupConfig, type LoadedGroupConfig } from '../gpu-backend/serve/groupConfig.ts';
import { prepareDemo } from '../gpu-backend/demo/demo.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const UVIT = join(ROOT, 'bin/uvit.js');

export type StageSetting = { ep: 'cpu' | 'cuda'; threads: number; deviceId: number };
export type PreparedModel = {
  modelId: string;
  cfg: LoadedGroupConfig;
  planPath: string;
  stageSettings: StageSetting[];
  /** true when nothing had to be made */
  cached: boolean;
};

function uvit(args: string[], log: (s: string) => void): void {
  log(`$ uvit ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [UVIT, ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`uvit ${args[0]} failed (exit ${r.status ?? r.signal}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
}

export async function prepareModel(o: { config: string; dir: string; stages: number; log: (s: string) => void }): Promise<PreparedModel> {
  const cfg = loadGroupConfig(o.config);
  let cached = true;
  if (!existsSync(cfg.weights)) {
    if (!cfg.demo) throw new Error(`weights ${cfg.weights} (from ${cfg.path}) are missing and the config has no demo seed to make them; see README "Real weights"`);
    mkdirSync(dirname(cfg.weights), { recursive: true });
    const tmp = `${cfg.weights}.tmp-${process.pid}.safetensors`;
    uvit(['init-weights', '--config', resolve(dirname(cfg.path), cfg.model), '--seed', String(cfg.demo.weights_seed), '--out', tmp], o.log);
    renameSync(tmp, cfg.weights);
    cached = false;
  }
  // text encoder + decoder (the weights exist by now, so prepareDemo leaves them alone)
  if (prepareDemo(cfg, o.log).some((f) => f.made)) cached = false;

  const w = statSync(cfg.weights);
  const stamp = createHash('sha256').update(JSON.stringify({
    model: readFileSync(resolve(dirname(cfg.path), cfg.model), 'utf8'), weights: [cfg.weights, w.size, w.mtimeMs], stages: o.stages, partition: cfg.partition,
  })).digest('hex');
  const out = join(o.dir, `${cfg.model_id}-s${o.stages}-${cfg.partition}`);
  const planPath = join(out, 'plan.json');
  const stampPath = join(out, 'stamp');
  if (!existsSync(planPath) || !existsSync(stampPath) || readFileSync(stampPath, 'utf8') !== stamp) {
    // Export beside the target and swap it in, so a concurrent start (tests) never sees a half-written split.
    const tmp = `${out}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    uvit(['export', '--config', resolve(dirname(cfg.path), cfg.model), '--weights', cfg.weights, '--stages', String(o.stages), '--partition', cfg.partition, '--out', tmp], o.log);
    if (!existsSync(join(tmp, 'plan.json'))) throw new Error(`uvit export wrote no plan.json in ${tmp}`);
    writeFileSync(join(tmp, 'stamp'), stamp);
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    cached = false;
  }
  const stageSettings = Array.from({ length: o.stages }, (_, k): StageSetting => {
    const s = cfg.stages?.[k];
    return { ep: (s?.ep ?? 'cpu') as 'cpu' | 'cuda', threads: s?.threads ?? 1, deviceId: s?.device_id ?? k };
  });
  return { modelId: cfg.model_id, cfg, planPath, stageSettings, cached };
}
