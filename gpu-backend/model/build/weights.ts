// Where the builder gets parameters from: a function or a Map of official state_dict names.
import type { Tensor } from '../../../shared/tensor.ts';

export type WeightSource =
  | ((name: string) => Float32Array | Tensor<'float32'>)
  | Map<string, Float32Array | Tensor<'float32'>>;

export type WeightGetter = (name: string, numel: number) => Float32Array;

export function weightGetter(src: WeightSource): WeightGetter {
  return (name, numel) => {
    const v = typeof src === 'function' ? src(name) : src.get(name);
    if (v === undefined) throw new Error(`graph builder: weight "${name}" is missing from the weight source`);
    const data = v instanceof Float32Array ? v : v.data;
    if (!(data instanceof Float32Array)) {
      throw new Error(`graph builder: weight "${name}" must be float32 data (Float32Array), got ${(data as object)?.constructor?.name ?? typeof data}`);
    }
    if (data.length !== numel) {
      throw new Error(`graph builder: weight "${name}" has ${data.length} elements, expected ${numel}`);
    }
    return data;
  };
}

/** [rows, cols] row-major -> [cols, rows] row-major (PyTorch Linear [out,in] -> MatMul [in,out]). */
export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const T = 32; // tiles keep both sides in cache (a plain loop is ~10x slower on U-ViT-H sized matrices)
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(r0 + T, rows);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(c0 + T, cols);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = w[base + c];
      }
    }
  }
  return out;
}
