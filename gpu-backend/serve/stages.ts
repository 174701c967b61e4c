// The stage ONNX files and plan.json of a group config, made once and kept. One cache rule for every caller
// (`uvit serve --stages N`, npm start, demo:clip): the export is redone only when one of its inputs changed (the
// model config, the weights file's path, size and mtime, the stage count, the partition), and it is written beside
// its target and swapped in, so a concurrent start never sees a half-written split.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportPlan } from '../partition/export.ts';
import type { LoadedGroupConfig } from './groupConfig.ts';

export interface ExportedStages {
  planPath: string;
  /** false when the kept export was still current */
  made: boolean;
}

/** Exports (or keeps) `stages` stages of the group's model under `root`/<model>-s<stages>-<partition>. */
export function exportStages(cfg: Pick<LoadedGroupConfig, 'model_id' | 'uvit' | 'weights' | 'partition'>, stages: number, root: string, log?: (s: string) => void): ExportedStages {
  const w = statSync(cfg.weights);
  const stamp = createHash('sha256')
    .update(JSON.stringify({ model: cfg.uvit, weights: [cfg.weights, w.size, w.mtimeMs], stages, partition: cfg.partition }))
    .digest('hex');
  const dir = join(root, `${cfg.model_id}-s${stages}-${cfg.partition}`);
  const planPath = join(dir, 'plan.json');
  const stampPath = join(dir, 'stamp');
  if (existsSync(planPath) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp) return { planPath, made: false };
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  log?.(`exporting ${stages} stages (${cfg.partition}) of ${cfg.model_id} to ${dir}`);
  exportPlan({ config: cfg.uvit, weightsPath: cfg.weights, numStages: stages, partition: cfg.partition, outDir: tmp, log });
  writeFileSync(join(tmp, 'stamp'), stamp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { planPath, made: true };
}
