// What a stage runs: one onnxruntime session per plan segment it holds, built from its shard only.
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../shared/tensor.ts';
import type { UViTConfig } from '../model/config.ts';
import { buildSegmentModel } from '../model/build/segment.ts';
import { createSession } from '../engine/session.ts';
import { loadWeights } from '../model/weights.ts';
import type { Plan } from '../partition/types.ts';

/** Runs route segments by index; feeds and outputs are keyed by the ONNX tensor names of partition/types.ts. */
export interface SegmentExecutor {
  /** ONNX input names of a segment this stage holds */
  inputNames(segment: number): readonly string[];
  run(segment: number, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

export interface OrtStageOptions {
  /** intra-op threads per session (the benchmark uses 1) */
  threads?: number;
  /** execution provider: 'cpu' (default) or 'cuda' with a device id (GPU hosts; see README) */
  ep?: 'cpu' | 'cuda';
  deviceId?: number;
}

export interface StageModelSource {
  config: UViTConfig;
  plan: Plan;
  weightsPath: string;
  /** exported ONNX per segment (uvit export); used when present, else the segment is built from the shard */
  segmentPaths?: string[];
}

/** Load stage `index`'s segments: only its own parameters are read from the weights file. */
export async function createOrtExecutor(src: StageModelSource, index: number, opts: OrtStageOptions = {}): Promise<SegmentExecutor> {
  const { plan, config } = src;
  const info = plan.stages[index];
  if (!info) throw new Error(`stage ${index}: plan has ${plan.stages.length} stages`);
  const so = { threads: opts.threads, ep: opts.ep, deviceId: opts.deviceId };
  const sessions = new Map<number, ort.InferenceSession>();
  const needBuild = info.segments.filter((s) => !(src.segmentPaths?.[s] && existsSync(src.segmentPaths[s])));
  const weights = needBuild.length ? loadWeights(src.weightsPath, config, info.params) : undefined;
  for (const s of info.segments) {
    const seg = plan.segments[s];
    const path = src.segmentPaths?.[s];
    try {
      const model = path && existsSync(path) ? path : buildSegmentModel(config, weights!, seg);
      sessions.set(s, await createSession(model, so));
    } catch (e) {
      throw new Error(`stage ${index}: cannot load segment ${s} [${seg.start}, ${seg.end}): ${(e as Error).message}`);
    }
  }
  weights?.clear();
  return {
    inputNames(segment) {
      const s = sessions.get(segment);
      if (!s) throw new Error(`stage ${index} does not hold segment ${segment} (holds ${info.segments.join(', ')})`);
      return s.inputNames;
    },
    async run(segment, feeds) {
      const s = sessions.get(segment);
      if (!s) throw new Error(`stage ${index} does not hold segment ${segment}`);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const name of s.inputNames) {
        const t = feeds[name];
        if (!t) throw new Error(`segment ${segment}: missing input ${name}`);
        ortFeeds[name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
      }
      const out = await s.run(ortFeeds);
      const res: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(out)) {
        res[name] = { dtype: t.type as 'float32', dims: [...t.dims], data: t.data as Float32Array };
      }
      return res;
    },
    async close() {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
    },
  };
}
