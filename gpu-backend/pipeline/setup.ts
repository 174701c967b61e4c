// Set-up for running the stage pipeline on initialised weights without exported segments: unbuilt plan files (each
// stage builds its segments from its shard at start-up) and deterministic input data. Used by bench:pipeline and the
// stage-pipeline integration tests.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { UViTConfig } from '../model/config.ts';
import { planFolded, planSequential } from '../partition/index.ts';
import { makePlanFile, writePlanFile } from '../partition/planFile.ts';
import type { PartitionKind } from '../partition/types.ts';

/** n floats uniform in [-scale, scale) from a 32-bit LCG: the same data for the same seed on every run */
export function det(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return a;
}

/** write a plan file (segments built from the shard at stage start-up) for a partition; returns its path */
export function writePlan(dir: string, cfg: UViTConfig, weights: string, kind: PartitionKind, S = 2): string {
  mkdirSync(dir, { recursive: true });
  const plan = kind === 'folded' ? planFolded(cfg, S) : planSequential(cfg, S);
  const path = join(dir, `plan-${kind}-${S}.json`);
  writePlanFile(path, makePlanFile({ config: cfg, weights, plan, segmentFiles: plan.segments.map((s) => `unbuilt-${kind}-${s.index}.onnx`) }));
  return path;
}
