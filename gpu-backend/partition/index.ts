// Public entry of the partition package: plans for a config, the cost model and plan files.

import type { UViTConfig } from '../model/config.ts';
import type { Plan } from './types.ts';
import type { CostOptions, PartitionChoice, Choice } from './costModel.ts';
import { choosePartition as chooseForInfo, planForInfo } from './costModel.ts';
import { planFolded as foldedForInfo, planSequential as sequentialForInfo } from './plan.ts';
import { modelInfoFromConfig } from './configInfo.ts';

export type { Plan, StageInfo, SkipRoute, PartitionKind } from './types.ts';
export type { Segment } from '../model/chain.ts';
export type { CostOptions, Cost, StageCost, Hop, Choice, PartitionChoice } from './costModel.ts';
export { DEFAULT_COST_OPTIONS, planCost } from './costModel.ts';
export { segmentParams, validatePlan, maxStages } from './plan.ts';
export { modelInfoFromConfig, dimsFromConfig } from './configInfo.ts';

export const planSequential = (cfg: UViTConfig, S: number): Plan => sequentialForInfo(modelInfoFromConfig(cfg), S);
export const planFolded = (cfg: UViTConfig, S: number): Plan => foldedForInfo(modelInfoFromConfig(cfg), S);
export const choosePartition = (cfg: UViTConfig, S: number, opts?: CostOptions): Choice =>
  chooseForInfo(modelInfoFromConfig(cfg), S, opts);
/** The plan for S stages and a partition; 'auto' picks by the cost model (costModel.ts, defaults documented there). */
export const planFor = (cfg: UViTConfig, S: number, partition: PartitionChoice, opts?: CostOptions): Plan =>
  planForInfo(modelInfoFromConfig(cfg), S, partition, opts);
