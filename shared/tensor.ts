// The one in-memory tensor type used by both sides (engine, samplers, frame codec).
// Runtime-agnostic: no Node or Workers imports here.

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8';

export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float16' | 'bfloat16'
    ? Uint16Array
    : D extends 'int64'
      ? BigInt64Array
      : D extends 'int32'
        ? Int32Array
        : Uint8Array;

export interface Tensor<D extends DType = DType> {
  dtype: D;
  dims: number[];
  data: TypedArrayFor<D>;
}

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
};

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function float32(dims: number[], data?: Float32Array): Tensor<'float32'> {
  const n = numel(dims);
  if (data && data.length !== n) {
    throw new Error(`float32 tensor of shape [${dims.join(',')}] needs ${n} elements, got ${data.length}`);
  }
  return { dtype: 'float32', dims, data: data ?? new Float32Array(n) };
}
