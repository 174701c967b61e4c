// Options and setup shared by the commands that run the network (forward, sample): config, weights, split, ORT.
import type { UViTConfig } from '../../model/config.ts';
import type { Plan } from '../../partition/types.ts';
import { intValue, str, UsageError, type CommandContext, type OptionSpecs, type Values } from '../command.ts';
import { requireFile } from '../io.ts';
import type { NetworkRunner } from '../runner.ts';

export const PARTITIONS = ['sequential', 'folded', 'auto'] as const;
export type PartitionArg = (typeof PARTITIONS)[number];

export const MODEL_OPTIONS: OptionSpecs = {
  config: { type: 'string', value: 'C.json', required: true, help: 'model config JSON (official constructor arguments)' },
  weights: { type: 'string', value: 'W.safetensors', required: true, help: 'weights with the official state_dict names' },
};

export const RUN_OPTIONS: OptionSpecs = {
  stages: { type: 'string', value: 'N', default: '1', help: 'split the network into N pipeline stages' },
  partition: {
    type: 'string',
    value: 'P',
    choices: PARTITIONS,
    default: 'sequential',
    help: 'how to split: contiguous runs, folded (skips stay local) or auto (cost model)',
  },
  threads: { type: 'string', value: 'K', help: 'ONNX Runtime intra-op threads per session (default: ORT decides)' },
  ep: { type: 'string', value: 'EP', choices: ['cpu', 'cuda'], default: 'cpu', help: 'execution provider' },
  'device-id': { type: 'string', value: 'K', help: 'CUDA device ordinal (with --ep cuda; default 0, with --spawn: the stage index)' },
  spawn: { type: 'boolean', help: 'run each stage in its own process (localhost TCP pipeline); the report gives per-process RSS' },
  report: { type: 'string', value: 'R.json', help: 'write a JSON report: per stage blocks, param bytes, RSS, compute ms; bytes moved; wall ms' },
};

export interface RunSetup {
  stages: number;
  partition: PartitionArg;
  threads?: number;
  ep: 'cpu' | 'cuda';
  /** undefined: 0 in-process, the stage index per spawned stage */
  deviceId?: number;
  spawn: boolean;
}

export function runSetup(cmd: string, v: Values): RunSetup {
  const ep = (str(v.ep) ?? 'cpu') as 'cpu' | 'cuda';
  const deviceId = intValue(cmd, 'device-id', v['device-id'], 0);
  if (ep !== 'cuda' && deviceId !== undefined && deviceId !== 0) {
    throw new UsageError(`uvit ${cmd}: --device-id ${deviceId} needs --ep cuda`);
  }
  return {
    stages: intValue(cmd, 'stages', v.stages) ?? 1,
    partition: (str(v.partition) ?? 'sequential') as PartitionArg,
    threads: intValue(cmd, 'threads', v.threads),
    ep,
    deviceId,
    spawn: v.spawn === true,
  };
}

export async function makePlan(cfg: UViTConfig, setup: RunSetup): Promise<Plan> {
  const { planFor } = await import('../../partition/index.ts');
  try {
    return planFor(cfg, setup.stages, setup.partition);
  } catch (e) {
    throw new Error(`--stages ${setup.stages} --partition ${setup.partition}: ${(e as Error).message}`);
  }
}

/** Loads the network: in this process stage by stage, or with --spawn one process per stage. */
export async function openRunner(
  cfg: UViTConfig,
  weightsPath: string,
  setup: RunSetup,
  ctx: CommandContext,
): Promise<NetworkRunner> {
  requireFile('weights', weightsPath);
  const plan = await makePlan(cfg, setup);
  if (setup.spawn) return openSpawned(cfg, weightsPath, plan, setup, ctx);
  const { InProcessRunner } = await import('../runner.ts');
  return InProcessRunner.create({
    config: cfg,
    weightsPath,
    plan,
    threads: setup.threads,
    ep: setup.ep,
    deviceId: setup.deviceId ?? 0,
    log: setup.stages > 1 ? ctx.log : undefined,
  });
}

/** --spawn: the stage-process pipeline runner of gpu-backend/cli/spawnedRunner.ts (SpawnedPipelineRunner). */
async function openSpawned(cfg: UViTConfig, weightsPath: string, plan: Plan, setup: RunSetup, ctx: CommandContext): Promise<NetworkRunner> {
  const { SpawnedPipelineRunner } = await import('../spawnedRunner.ts');
  return SpawnedPipelineRunner.create({
    config: cfg,
    weightsPath,
    plan,
    threads: setup.threads,
    ep: setup.ep,
    deviceIds: setup.deviceId === undefined ? undefined : plan.stages.map(() => setup.deviceId!),
    log: ctx.log,
  });
}
