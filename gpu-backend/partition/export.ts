// Export a split model: one ONNX file per plan segment (weights as external data beside it) + plan.json.
// Each segment reads only its own tensors from the safetensors file, and they are dropped before the next
// segment is built, so exporting needs about one segment's weights (x ~2 while the graph is encoded) in memory.
// A stage process then only opens its segments' ONNX files (ORT loads the external data itself), never the
// safetensors file: no second copy of the weights in JS.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { UViTConfig } from '../model/config.ts';
import { loadWeights } from '../model/weights.ts';
import { buildSegmentModel } from '../model/build/segment.ts';
import type { AttentionImpl } from '../model/build/layers.ts';
import type { Plan } from './types.ts';
import type { CostOptions, PartitionChoice } from './costModel.ts';
import { choosePartition, planForInfo } from './costModel.ts';
import { segmentParams } from './plan.ts';
import { modelInfoFromConfig } from './configInfo.ts';
import { makePlanFile, writePlanFile, type PlanFile } from './planFile.ts';

export interface ExportOptions {
  config: UViTConfig;
  weightsPath: string;
  numStages: number;
  partition: PartitionChoice;
  outDir: string;
  /** cost-model options for 'auto' (and recorded in plan.json either way) */
  cost?: CostOptions;
  /** store weights inline in each .onnx instead of a `.onnx.data` file beside it (only for models < 2 GiB per segment) */
  inlineWeights?: boolean;
  attention?: AttentionImpl;
  /** progress lines (stderr in the CLI) */
  log?: (line: string) => void;
}

export interface ExportResult {
  planPath: string;
  plan: Plan;
  file: PlanFile;
  /** absolute .onnx path per segment */
  segmentPaths: string[];
}

export function exportPlan(o: ExportOptions): ExportResult {
  const info = modelInfoFromConfig(o.config);
  const choice = choosePartition(info, o.numStages, o.cost);
  const plan = o.partition === 'auto' ? choice.plan : planForInfo(info, o.numStages, o.partition, o.cost);
  const outDir = resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const file = makePlanFile({
    config: o.config,
    weights: resolve(o.weightsPath),
    plan,
    cost: {
      requested: o.partition,
      chosen: plan.partition,
      forwardSec: { sequential: choice.sequential.forwardSec, folded: choice.folded?.forwardSec ?? null },
      options: o.cost ?? {},
    },
  });
  const segmentPaths: string[] = [];
  for (const seg of plan.segments) {
    const t0 = performance.now();
    const names = segmentParams(info, seg);
    const path = join(outDir, file.segmentFiles[seg.index]);
    let weights: Map<string, unknown> | undefined = loadWeights(o.weightsPath, o.config, names);
    const opts = { attention: o.attention, ...(o.inlineWeights ? {} : { externalDataPath: `${path}.data` }) };
    const bytes = buildSegmentModel(o.config, weights as ReturnType<typeof loadWeights>, seg, opts);
    weights = undefined;
    writeFileSync(`${path}.tmp`, bytes);
    renameSync(`${path}.tmp`, path);
    segmentPaths.push(path);
    const mb = names.reduce((a, n) => a + info.paramBytes(n), 0) / 2 ** 20;
    o.log?.(`segment ${seg.index} (stage ${seg.stage}, blocks [${seg.start}, ${seg.end})): ${mb.toFixed(1)} MiB of weights, ` +
      `${(performance.now() - t0).toFixed(0)} ms -> ${path}`);
  }
  const planPath = join(outDir, 'plan.json');
  writePlanFile(planPath, file);
  return { planPath, plan, file, segmentPaths };
}
