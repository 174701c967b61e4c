// Opens one plan segment as an ONNX Runtime session. Two ways, chosen by the segment's parameter bytes:
// - small segments: the ONNX model is built in memory and ORT gets the bytes (no files, fastest for tests);
// - larger ones: the model is written to a file with its weights as external data and ORT opens it by path.
//   Handing ORT the bytes peaks at ~4x the shard (the builder's copy, the encoded protobuf and ORT's own copy),
//   the file route at ~1.2-1.4x (bench:memory, README "Pipeline split"), so everything but small models goes by file.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import type { UViTConfig } from '../model/config.ts';
import { buildSegmentModel } from '../model/build/segment.ts';
import type { AttentionImpl } from '../model/build/layers.ts';
import type { WeightSource } from '../model/build/weights.ts';
import { buildSegmentFile } from '../partition/export.ts';
import { modelInfoFromConfig } from '../partition/configInfo.ts';
import { segmentParams } from '../partition/plan.ts';
import { openShard } from '../partition/shard.ts';
import type { Segment } from '../model/chain.ts';
import { createSession, type EngineSessionOptions } from './session.ts';

/** Default: segments with more parameter bytes than this are built into a file (tests' models are far below). */
export const FILE_BUILD_OVER_BYTES = 64 * 2 ** 20;

export interface SegmentLoadOptions {
  /** safetensors file (the segment's tensors are streamed from it one at a time) ... */
  weightsPath?: string;
  /** ... or weights in memory (official names) */
  weights?: WeightSource;
  intermediates?: boolean;
  attention?: AttentionImpl;
  session?: EngineSessionOptions;
  /** build into a file when the segment has more parameter bytes than this (default FILE_BUILD_OVER_BYTES) */
  fileOverBytes?: number;
  /** where the file route writes; called only when a segment takes it (the caller owns and removes the folder) */
  workDir: () => string;
}

export interface OpenedSegment {
  session: ort.InferenceSession;
  /** float32 bytes of the segment's parameters */
  paramBytes: number;
  /** the .onnx path when built into a file, else undefined */
  file?: string;
}

/** float32 bytes of the parameters one segment needs. */
export function segmentParamBytes(cfg: UViTConfig, seg: Segment): number {
  const info = modelInfoFromConfig(cfg);
  return segmentParams(info, seg).reduce((a, n) => a + info.paramBytes(n), 0);
}

/** A fresh folder under `parent` (default the OS temp folder) for one loader's segment files. */
export function makeSegmentWorkDir(parent?: string): string {
  const root = parent ?? tmpdir();
  mkdirSync(root, { recursive: true });
  return mkdtempSync(join(root, 'uvit-segments-'));
}

export async function openSegment(cfg: UViTConfig, seg: Segment, o: SegmentLoadOptions): Promise<OpenedSegment> {
  if ((o.weightsPath === undefined) === (o.weights === undefined)) {
    throw new Error(`openSegment (segment ${seg.index}): give exactly one of weightsPath and weights`);
  }
  const paramBytes = segmentParamBytes(cfg, seg);
  const build = { intermediates: o.intermediates, attention: o.attention };
  if (paramBytes > (o.fileOverBytes ?? FILE_BUILD_OVER_BYTES)) {
    const file = join(o.workDir(), `segment-${seg.index}-blocks-${seg.start}-${seg.end}.onnx`);
    if (o.weightsPath !== undefined) buildSegmentFile(cfg, o.weightsPath, seg, file, build);
    else writeFileSync(file, buildSegmentModel(cfg, o.weights!, seg, { ...build, externalDataPath: `${file}.data` }));
    return { session: await createSession(file, o.session), paramBytes, file };
  }
  if (o.weights !== undefined) return { session: await createSession(buildSegmentModel(cfg, o.weights, seg, build), o.session), paramBytes };
  const shard = openShard(o.weightsPath!, cfg, segmentParams(modelInfoFromConfig(cfg), seg));
  let bytes: Uint8Array;
  try {
    bytes = buildSegmentModel(cfg, (name) => shard.get(name), seg, build);
  } finally {
    shard.close();
  }
  return { session: await createSession(bytes, o.session), paramBytes };
}
