// The contract between the planner, the segment graph builder, the in-process engine and the stage processes.
//
// Block numbering, segments and tensor names: model/chain.ts. A partition cuts the chain into contiguous *segments*;
// the stream visits the segments in chain order.
// Each segment is assigned to a stage (process). Sequential: S segments on stages 0..S-1.
// Folded: 2S-1 segments on stages 0,1,..,S-1,..,1,0 (stage S-1 holds the mid block), so every skip stays on its stage.
// A skip made in one segment and consumed in another crosses the network iff the two segments are on different stages.

import type { Segment } from '../model/chain.ts';

export type PartitionKind = 'sequential' | 'folded';

export interface StageInfo {
  stage: number;
  /** segment indices this stage runs, in route order */
  segments: number[];
  /** official state_dict names this stage needs (its shard) */
  params: string[];
  paramBytes: number;
  /** forward FLOPs per sample at full length, summed over its segments */
  flops: number;
}

export interface SkipRoute {
  /** in-block index i of the skip */
  skip: number;
  fromSegment: number;
  toSegment: number;
  fromStage: number;
  toStage: number;
  /** false when both segments are on the same stage (kept in memory) */
  crossesNetwork: boolean;
}

export interface Plan {
  version: 1;
  partition: PartitionKind;
  numStages: number;
  segments: Segment[];
  stages: StageInfo[];
  skips: SkipRoute[];
}
