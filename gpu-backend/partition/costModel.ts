// Cost model of one pipelined forward (one sampler step) over a Plan, and the `auto` partition choice.
//
// Per micro-batch, stage k computes compute_k = flops_k * batch / flopsPerSec and sends
//   stream_k: the stream tensors it hands to the next segment on another stage (+ eps to the driver from the head),
//   skip_k:   the skip tensors it makes that are consumed on another stage (sequential only; folded keeps them local).
// Every message also pays `latencySec`. Skips are needed only when the stream comes back, so with overlapSkips
// (the default, docs/model.md §9) they travel while the stage computes; the stage is then busy for
// max(compute_k + stream_k, stream_k + skip_k) (the link can still be the bottleneck), else the plain sum.
// With M micro-batches in flight:  T ≈ (M + S - 1) · max_k stageSec_k   (docs/model.md §9).
// Pure: no I/O.

import type { Plan, PartitionKind } from './types.ts';
import type { ModelInfo } from './modelInfo.ts';
import { activationBytes, outputBytes } from './flops.ts';
import { planFolded, planSequential, maxStages } from './plan.ts';

export interface CostOptions {
  /** link bandwidth between stages, bytes/s (default 10e9: PCIe-class / NVLink-less host-to-host) */
  linkBytesPerSec?: number;
  /** per-message latency, s (default 20e-6) */
  latencySec?: number;
  /** sustained forward FLOP/s of one stage's device (default 100e12: an H100-class GPU at ~TF32 rates) */
  flopsPerSec?: number;
  /** micro-batches in flight per step (default 2: the cond and uncond halves of CFG) */
  microBatches?: number;
  /** samples per micro-batch (default 1) */
  batch?: number;
  /** bytes per transported element (default 4: float32; 2 with float16 transport) */
  bytesPerElement?: number;
  /** send skips asynchronously, overlapped with compute (default true) */
  overlapSkips?: boolean;
}

export const DEFAULT_COST_OPTIONS: Required<CostOptions> = {
  linkBytesPerSec: 10e9,
  latencySec: 20e-6,
  flopsPerSec: 100e12,
  microBatches: 2,
  batch: 1,
  bytesPerElement: 4,
  overlapSkips: true,
};

export interface Hop {
  kind: 'stream' | 'skip' | 'output';
  /** skip index for kind 'skip' */
  skip?: number;
  fromStage: number;
  /** -1: the driver (the eps output) */
  toStage: number;
  bytes: number;
}

export interface StageCost {
  stage: number;
  flops: number;
  computeSec: number;
  streamBytes: number;
  skipBytes: number;
  messages: number;
  sendSec: number;
  /** busy time per micro-batch (the pipeline's cycle time is the largest of these) */
  stageSec: number;
}

export interface Cost {
  partition: PartitionKind;
  numStages: number;
  microBatches: number;
  perStage: StageCost[];
  /** network transfers per micro-batch (same-stage hand-overs are omitted) */
  hops: Hop[];
  /** per micro-batch, summed over hops */
  streamBytes: number;
  skipBytes: number;
  bottleneckSec: number;
  /** estimated time of one forward with all micro-batches: (M + S - 1) * bottleneckSec */
  forwardSec: number;
  /** one device running the unsplit model on the same M micro-batches, no transfers */
  singleDeviceSec: number;
}

export function resolveCostOptions(o: CostOptions = {}): Required<CostOptions> {
  const r = { ...DEFAULT_COST_OPTIONS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  for (const k of ['linkBytesPerSec', 'flopsPerSec', 'microBatches', 'batch', 'bytesPerElement'] as const) {
    if (!(r[k] > 0)) throw new Error(`cost option ${k} must be > 0, got ${r[k]}`);
  }
  if (!(r.latencySec >= 0)) throw new Error(`cost option latencySec must be >= 0, got ${r.latencySec}`);
  if (!Number.isInteger(r.microBatches)) throw new Error(`cost option microBatches must be an integer, got ${r.microBatches}`);
  return r;
}

export function planCost(info: ModelInfo, plan: Plan, opts: CostOptions = {}): Cost {
  const o = resolveCostOptions(opts);
  const act = activationBytes(info.dims, o.batch, o.bytesPerElement);
  const hops: Hop[] = [];
  const segs = plan.segments;
  for (let i = 0; i + 1 < segs.length; i++) {
    if (segs[i].stage !== segs[i + 1].stage) {
      hops.push({ kind: 'stream', fromStage: segs[i].stage, toStage: segs[i + 1].stage, bytes: act });
    }
  }
  for (const r of plan.skips) {
    if (r.crossesNetwork) hops.push({ kind: 'skip', skip: r.skip, fromStage: r.fromStage, toStage: r.toStage, bytes: act });
  }
  const headStage = segs[segs.length - 1].stage;
  hops.push({ kind: 'output', fromStage: headStage, toStage: -1, bytes: outputBytes(info.dims, o.batch, 4) });
  const perStage: StageCost[] = plan.stages.map((st) => {
    const out = hops.filter((h) => h.fromStage === st.stage);
    const streamBytes = out.filter((h) => h.kind !== 'skip').reduce((a, h) => a + h.bytes, 0);
    const skipBytes = out.filter((h) => h.kind === 'skip').reduce((a, h) => a + h.bytes, 0);
    const nStream = out.filter((h) => h.kind !== 'skip').length;
    const nSkip = out.length - nStream;
    const computeSec = (st.flops * o.batch) / o.flopsPerSec;
    const streamSec = streamBytes / o.linkBytesPerSec + nStream * o.latencySec;
    const skipSec = skipBytes / o.linkBytesPerSec + nSkip * o.latencySec;
    const stageSec = o.overlapSkips ? Math.max(computeSec + streamSec, streamSec + skipSec) : computeSec + streamSec + skipSec;
    return { stage: st.stage, flops: st.flops, computeSec, streamBytes, skipBytes, messages: out.length, sendSec: streamSec + skipSec, stageSec };
  });
  const bottleneckSec = Math.max(...perStage.map((s) => s.stageSec));
  const S = plan.numStages;
  const M = o.microBatches;
  const totalFlops = plan.stages.reduce((a, s) => a + s.flops, 0);
  return {
    partition: plan.partition,
    numStages: S,
    microBatches: M,
    perStage,
    hops,
    streamBytes: hops.filter((h) => h.kind === 'stream').reduce((a, h) => a + h.bytes, 0),
    skipBytes: hops.filter((h) => h.kind === 'skip').reduce((a, h) => a + h.bytes, 0),
    bottleneckSec,
    forwardSec: (M + S - 1) * bottleneckSec,
    singleDeviceSec: (M * totalFlops * o.batch) / o.flopsPerSec,
  };
}

export interface Choice {
  chosen: PartitionKind;
  plan: Plan;
  sequential: Cost;
  /** null when S is too large for a folded split (S > n+1) */
  folded: Cost | null;
}

/**
 * Plan both partitions and pick the one with the smaller estimated forward time (ties go to folded: no skip
 * traffic). S = 1 is no split at all: both plans are the same single segment, reported as sequential.
 */
export function choosePartition(info: ModelInfo, S: number, opts: CostOptions = {}): Choice {
  const seqPlan = planSequential(info, S);
  const sequential = planCost(info, seqPlan, opts);
  if (S > maxStages(info.dims.n, 'folded')) return { chosen: 'sequential', plan: seqPlan, sequential, folded: null };
  if (S === 1) return { chosen: 'sequential', plan: seqPlan, sequential, folded: planCost(info, planFolded(info, 1), opts) };
  const foldPlan = planFolded(info, S);
  const folded = planCost(info, foldPlan, opts);
  const seqWins = sequential.forwardSec < folded.forwardSec * (1 - 1e-9);
  return seqWins
    ? { chosen: 'sequential', plan: seqPlan, sequential, folded }
    : { chosen: 'folded', plan: foldPlan, sequential, folded };
}

export type PartitionChoice = PartitionKind | 'auto';

export function planForInfo(info: ModelInfo, S: number, partition: PartitionChoice, opts: CostOptions = {}): Plan {
  if (partition === 'sequential') return planSequential(info, S);
  if (partition === 'folded') return planFolded(info, S);
  if (partition === 'auto') return choosePartition(info, S, opts).plan;
  throw new Error(`unknown partition '${partition as string}': expected sequential, folded or auto`);
}
