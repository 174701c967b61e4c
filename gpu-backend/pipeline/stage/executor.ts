// What a stage runs: one onnxruntime session per scheduling unit (units.ts), built from the stage's shard only.
import { existsSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../../shared/tensor.ts';
import { derive, type UViTConfig } from '../../model/config.ts';
import { createSession } from '../../engine/session.ts';
import { FILE_BUILD_OVER_BYTES, makeSegmentWorkDir, openSegment } from '../../engine/segmentLoader.ts';
import type { Plan } from '../../partition/types.ts';
import { type Granularity, stageUnits, type Unit } from './units.ts';

/** Runs units by key; feeds and outputs are keyed by the ONNX tensor names of partition/types.ts. */
export interface UnitExecutor {
  readonly units: readonly Unit[];
  /** ONNX input names of a unit */
  inputNames(unit: string): readonly string[];
  run(unit: string, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

export interface OrtStageOptions {
  /** intra-op threads per session (the benchmark uses 1) */
  threads?: number;
  /** execution provider: 'cpu' (default) or 'cuda' with a device id (GPU hosts; see README) */
  ep?: 'cpu' | 'cuda';
  deviceId?: number;
  /** 'auto' (default): cut segments where skips cross the network; 'block' | 'segment' */
  granularity?: Granularity;
}

export interface StageModelSource {
  config: UViTConfig;
  plan: Plan;
  weightsPath: string;
  /** exported ONNX per plan segment (uvit export); used for units that are a whole segment, when present */
  segmentPaths?: string[];
}

/** Load stage `index`'s units: only its own parameters are read from the weights file. */
export async function createOrtExecutor(src: StageModelSource, index: number, opts: OrtStageOptions = {}): Promise<UnitExecutor> {
  const { plan, config } = src;
  const info = plan.stages[index];
  if (!info) throw new Error(`stage ${index}: plan has ${plan.stages.length} stages`);
  const granularity = opts.granularity ?? 'auto';
  const units = stageUnits(plan, derive(config).n, index, granularity);
  // an exported segment file serves a unit that is the whole segment
  const whole = (u: Unit) => u.graph.start === plan.segments[u.segment].start && u.graph.end === plan.segments[u.segment].end;
  const fileOf = (u: Unit) => (whole(u) ? src.segmentPaths?.[u.segment] : undefined);
  // Units without an exported file are built from the shard by the engine's segment loader. Chosen by the whole
  // stage's shard, not per unit (the sequential split cuts a stage into many units): a big stage streams its shard
  // into files with external data and runs without ORT's per-session CPU arena (each session would keep its own):
  // same compute, stage RSS 421 -> 297 MB on an 87 MiB shard. A small stage builds in memory and keeps the arena
  // (~20 % faster on the demo model, bench:pipeline).
  const big = info.paramBytes > FILE_BUILD_OVER_BYTES;
  const fileOverBytes = big ? 0 : Infinity;
  const so = { threads: opts.threads, ep: opts.ep, deviceId: opts.deviceId, memArena: !big };
  let ownDir: string | undefined;
  const removeDir = () => ownDir && rmSync(ownDir, { recursive: true, force: true });
  const workDir = () => (ownDir ??= makeSegmentWorkDir());
  const sessions = new Map<string, ort.InferenceSession>();
  try {
    for (const u of units) {
      const file = fileOf(u);
      const session = file && existsSync(file)
        ? await createSession(file, so)
        : (await openSegment(config, u.graph, { weightsPath: src.weightsPath, session: so, workDir, fileOverBytes })).session;
      sessions.set(u.key, session);
    }
  } catch (e) {
    for (const s of sessions.values()) await s.release();
    removeDir();
    throw new Error(`stage ${index}: cannot load its segments: ${(e as Error).message}`);
  }
  const get = (unit: string) => {
    const s = sessions.get(unit);
    if (!s) throw new Error(`stage ${index} has no unit ${unit} (has ${[...sessions.keys()].join(', ')})`);
    return s;
  };
  return {
    units,
    inputNames: (unit) => get(unit).inputNames,
    async run(unit, feeds) {
      const s = get(unit);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const name of s.inputNames) {
        const t = feeds[name];
        if (!t) throw new Error(`unit ${unit}: missing input ${name}`);
        ortFeeds[name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
      }
      const out = await s.run(ortFeeds);
      const res: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(out)) res[name] = { dtype: t.type as 'float32', dims: [...t.dims], data: t.data as Float32Array };
      return res;
    },
    async close() {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
      removeDir();
    },
  };
}
