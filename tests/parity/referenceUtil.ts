// Helpers for the reference-forward tests.
import { readFileSync } from 'node:fs';
import type { Tensor } from '../../shared/tensor.ts';
import { parseConfig, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { loadWeights } from '../../gpu-backend/model/weights.ts';
import type { ReferenceInputs } from '../../gpu-backend/model/reference.ts';
import { GOLDEN_DIR } from '../golden.ts';

export const GOLDEN = GOLDEN_DIR;

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.dims.join(',') !== b.dims.join(',')) throw new Error(`shape [${a.dims}] vs [${b.dims}]`);
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function loadGolden(): { cfg: UViTConfig; weights: ReturnType<typeof loadWeights>; inputs: ReferenceInputs } {
  const cfg = parseConfig(JSON.parse(readFileSync(`${GOLDEN}/case.json`, 'utf8')).config);
  return {
    cfg,
    weights: loadWeights(`${GOLDEN}/weights.safetensors`, cfg),
    inputs: {
      x: readNpy(`${GOLDEN}/input_x.npy`),
      timesteps: readNpy(`${GOLDEN}/input_timesteps.npy`),
      y: readNpy(`${GOLDEN}/input_y.npy`),
    },
  };
}
