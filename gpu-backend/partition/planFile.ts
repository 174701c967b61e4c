// plan.json: what `uvit export` writes next to the segment ONNX files and `uvit stage --plan PLAN.json --index k` reads.
//
// {
//   "format": "uvit-plan", "version": 1,
//   "config":  { ...the model config (official constructor arguments, gpu-backend/model/config.ts) },
//   "weights": "W.safetensors",              // relative paths resolve against the plan file's directory
//   "segmentFiles": ["segment-0.onnx", ...], // one ONNX model per plan segment, in route order (index = segment index)
//   "plan": { ...Plan (types.ts) },
//   "cost": { ... }                          // optional, informational: the cost model's figures when it was chosen
// }
// Stage k runs plan.stages[k].segments (in that order along the route) and loads plan.stages[k].params.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import type { UViTConfig } from '../model/config.ts';
import { parseConfig, derive } from '../model/config.ts';
import type { Plan } from './types.ts';
import { segmentParams, validatePlan } from './plan.ts';
import { modelInfoFromConfig } from './configInfo.ts';

const nat = z.number().int().nonnegative();

export const SegmentSchema = z.strictObject({
  index: nat,
  stage: nat,
  start: nat,
  end: nat,
  embed: z.boolean(),
  head: z.boolean(),
  skipsIn: z.array(nat),
  skipsOut: z.array(nat),
});

export const PlanSchema = z.strictObject({
  version: z.literal(1),
  partition: z.enum(['sequential', 'folded']),
  numStages: z.number().int().positive(),
  segments: z.array(SegmentSchema).min(1),
  stages: z.array(
    z.strictObject({
      stage: nat,
      segments: z.array(nat).min(1),
      params: z.array(z.string()),
      paramBytes: nat,
      flops: z.number().nonnegative(),
    }),
  ),
  skips: z.array(
    z.strictObject({
      skip: nat,
      fromSegment: nat,
      toSegment: nat,
      fromStage: nat,
      toStage: nat,
      crossesNetwork: z.boolean(),
    }),
  ),
});

export const PlanFileSchema = z.strictObject({
  format: z.literal('uvit-plan'),
  version: z.literal(1),
  config: z.record(z.string(), z.unknown()),
  weights: z.string().min(1),
  segmentFiles: z.array(z.string().min(1)),
  plan: PlanSchema,
  cost: z.unknown().optional(),
});

export type PlanFile = z.infer<typeof PlanFileSchema>;

/** A plan file after validation, with paths resolved. */
export interface LoadedPlan {
  file: PlanFile;
  config: UViTConfig;
  plan: Plan;
  /** absolute weights path */
  weightsPath: string;
  /** absolute ONNX path per segment */
  segmentPaths: string[];
}

export function defaultSegmentFile(plan: Plan, index: number): string {
  return `segment-${index}-stage-${plan.segments[index].stage}.onnx`;
}

export function makePlanFile(args: { config: UViTConfig; weights: string; plan: Plan; segmentFiles?: string[]; cost?: unknown }): PlanFile {
  const { config, weights, plan } = args;
  const segmentFiles = args.segmentFiles ?? plan.segments.map((_, i) => defaultSegmentFile(plan, i));
  const file: PlanFile = {
    format: 'uvit-plan',
    version: 1,
    config: config as unknown as Record<string, unknown>,
    weights,
    segmentFiles,
    plan,
    ...(args.cost === undefined ? {} : { cost: args.cost }),
  };
  checkPlanFile(file, '');
  return file;
}

/** Validate a parsed JSON value as a plan file; `baseDir` resolves relative paths. */
export function parsePlanFile(json: unknown, baseDir: string, where = ''): LoadedPlan {
  const r = PlanFileSchema.safeParse(json);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`invalid plan file${where}: ${msg}`);
  }
  const file = r.data;
  const { config, plan } = checkPlanFile(file, where);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return { file, config, plan, weightsPath: abs(file.weights), segmentPaths: file.segmentFiles.map(abs) };
}

export function readPlanFile(path: string): LoadedPlan {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read plan file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`plan file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parsePlanFile(json, dirname(resolve(path)), ` ${path}`);
}

export function writePlanFile(path: string, file: PlanFile): void {
  checkPlanFile(file, ` ${path}`);
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n');
}

/** Cross-checks the plan against its config: chain layout, segment files, and each stage's shard. */
function checkPlanFile(file: PlanFile, where: string): { config: UViTConfig; plan: Plan } {
  const config = parseConfig(file.config, ` (in plan file${where})`);
  const plan = file.plan as Plan;
  const { n } = derive(config);
  try {
    validatePlan(plan, n);
  } catch (e) {
    throw new Error(`plan file${where}: ${(e as Error).message}`);
  }
  if (file.segmentFiles.length !== plan.segments.length) {
    throw new Error(`plan file${where}: ${file.segmentFiles.length} segmentFiles for ${plan.segments.length} segments`);
  }
  const info = modelInfoFromConfig(config);
  for (const st of plan.stages) {
    const want = st.segments.flatMap((i) => segmentParams(info, plan.segments[i]));
    if (want.join('\n') !== st.params.join('\n')) {
      const missing = want.filter((p) => !st.params.includes(p));
      const extra = st.params.filter((p) => !want.includes(p));
      throw new Error(
        `plan file${where}: stage ${st.stage} params do not match its segments for this config ` +
          `(missing: [${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}], ` +
          `unexpected: [${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}])`,
      );
    }
  }
  return { config, plan };
}
