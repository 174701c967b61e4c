// Elementwise float32 tensor arithmetic for the samplers (float64 scalars, float64 accumulation, float32 storage).
import { float32, type Tensor } from '../../shared/tensor.ts';

export type Term = readonly [coef: number, t: Tensor<'float32'>];

/** sum_k coef_k * t_k, all tensors of the same shape */
export function linComb(...terms: Term[]): Tensor<'float32'> {
  if (terms.length === 0) throw new Error('linComb needs at least one term');
  const dims = terms[0][1].dims;
  const n = terms[0][1].data.length;
  for (const [, t] of terms) {
    if (t.data.length !== n || t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new Error(`linComb: shape mismatch [${t.dims.join(',')}] vs [${dims.join(',')}]`);
    }
  }
  const out = new Float32Array(n);
  const coefs = terms.map(([c]) => c);
  const arrays = terms.map(([, t]) => t.data);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < arrays.length; k++) s += coefs[k] * arrays[k][i];
    out[i] = s;
  }
  return float32([...dims], out);
}

export function assertSameShape(a: Tensor, b: Tensor, what: string): void {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) {
    throw new Error(`${what}: expected shape [${a.dims.join(',')}], got [${b.dims.join(',')}]`);
  }
}
