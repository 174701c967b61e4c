// Export a split model: one ONNX file per plan segment (weights as external data beside it) + plan.json.
// Each segment reads only its own tensors from the safetensors file, one at a time as the builder asks for them
// (partition/shard.ts), so exporting holds about one segment's weights in memory.
// A stage process then only opens its segments' ONNX files (ORT loads the external data itself), never the
// safetensors file: no second copy of the weights in JS.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { UViTConfig } from '../model/config.ts';
import { buildSegmentModel } from '../model/build/segment.ts';
import type { AttentionImpl } from '../model/build/layers.ts';
import type { Plan } from './types.ts';
import type { Segment } from '../model/chain.ts';
import type { CostOptions, PartitionChoice } from './costModel.ts';
import { choosePartition, planForInfo } from './costModel.ts';
import { segmentParams } from './plan.ts';
import { modelInfoFromConfig } from './configInfo.ts';
import { makePlanFile, writePlanFile, type PlanFile } from './planFile.ts';
import { openShard } from './shard.ts';

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
  /** record the weights path in plan.json relative to outDir (the folder can move with its weights) instead of absolute */
  relativeWeights?: boolean;
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
    weights: o.relativeWeights ? relative(outDir, resolve(o.weightsPath)) : resolve(o.weightsPath),
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
    buildSegmentFile(o.config, o.weightsPath, seg, path, { attention: o.attention, inlineWeights: o.inlineWeights });
    segmentPaths.push(path);
    const mb = names.reduce((a, n) => a + info.paramBytes(n), 0) / 2 ** 20;
    o.log?.(`segment ${seg.index} (stage ${seg.stage}, blocks [${seg.start}, ${seg.end})): ${mb.toFixed(1)} MiB of weights, ` +
      `${(performance.now() - t0).toFixed(0)} ms -> ${path}`);
  }
  const planPath = join(outDir, 'plan.json');
  writePlanFile(planPath, file);
  return { planPath, plan, file, segmentPaths };
}

/**
 * Build one segment's ONNX file at `path` (weights as external data in `${path}.data` unless inlineWeights),
 * streaming only that segment's tensors from the safetensors file. A stage process that has no exported files can
 * call this and then open `path` with ORT: its peak RSS stays about the same as opening an exported file
 * (bench:memory, mode "external"), unlike building in memory and handing ORT the bytes (~4x the shard).
 */
export function buildSegmentFile(
  config: UViTConfig,
  weightsPath: string,
  seg: Segment,
  path: string,
  opts: { attention?: AttentionImpl; intermediates?: boolean; inlineWeights?: boolean } = {},
): void {
  const names = segmentParams(modelInfoFromConfig(config), seg);
  const shard = openShard(weightsPath, config, names);
  let bytes: Uint8Array;
  try {
    const build = {
      attention: opts.attention,
      intermediates: opts.intermediates,
      ...(opts.inlineWeights ? {} : { externalDataPath: `${path}.data` }),
    };
    bytes = buildSegmentModel(config, (name) => shard.get(name), seg, build);
  } finally {
    shard.close();
  }
  if (shard.read.size !== names.length) {
    throw new Error(`segment ${seg.index}: the builder read ${shard.read.size} of the ${names.length} tensors of its shard`);
  }
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}
