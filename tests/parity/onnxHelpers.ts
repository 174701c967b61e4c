// Shared helpers of the ONNX parity tests: seeded inputs and max-abs comparison.
import { expect } from 'vitest';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { derive, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { Rng } from '../../gpu-backend/model/initWeights.ts';
import type { ForwardInputs } from '../../gpu-backend/engine/engine.ts';

export function maxAbs(a: Tensor, b: Tensor): number {
  expect(a.dims).toEqual(b.dims);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const e = Math.abs(Number(a.data[i]) - Number(b.data[i]));
    if (!(e <= m)) m = e; // NaN propagates as a failure
  }
  return m;
}

export function randn(dims: number[], seed: number, stream: string, scale = 1): Tensor<'float32'> {
  const rng = new Rng(seed, stream);
  const n = dims.reduce((a, b) => a * b, 1);
  return float32(dims, Float32Array.from({ length: n }, () => scale * rng.normal()));
}

/** Seeded model inputs for batch B (and F' frames for video); fractional timesteps. */
export function makeInputs(cfg: UViTConfig, B: number, seed: number, frames?: number): ForwardInputs {
  const d = derive(cfg);
  const ts = [900.0999755859375, 37.25, 1, 500.5, 999];
  const inp: ForwardInputs = {
    x: randn(d.inputShape(B, frames), seed, 'x'),
    timesteps: float32([B], Float32Array.from({ length: B }, (_, i) => ts[i % ts.length])),
  };
  if (d.variant === 'class') inp.y = { dtype: 'int64', dims: [B], data: BigInt64Array.from({ length: B }, (_, i) => BigInt((3 * i + 1) % d.numClasses)) };
  if (d.variant === 'text') inp.context = randn([B, d.extras - 1, cfg.clip_dim!], seed, 'context');
  return inp;
}
