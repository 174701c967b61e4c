// Data prediction x0(x, t) = (x - sigma(t) eps(x, t*N)) / alpha(t) (DPM-Solver++, predict_x0=True, no thresholding).
import type { Tensor } from '../../shared/tensor.ts';
import { assertSameShape } from './ops.ts';
import type { NoiseScheduleVP } from './schedule.ts';
import type { EpsFn, OnStep } from './types.ts';

const f32 = Math.fround;

export interface DataPredictor {
  /** x0 at continuous time t (t is rounded to float32, as the torch code holds it) */
  x0(x: Tensor<'float32'>, t: number): Promise<Tensor<'float32'>>;
  /** number of model evaluations so far */
  readonly calls: number;
}

export function dataPredictor(ns: NoiseScheduleVP, epsFn: EpsFn, total: number, onStep?: OnStep): DataPredictor {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    async x0(x, t) {
      const tc = f32(t);
      const tInput = f32(tc * ns.totalN);
      const eps = await epsFn(x, tInput);
      assertSameShape(x, eps, `eps prediction at t_input=${tInput}`);
      const alpha = ns.marginalAlpha(tc);
      const sigma = ns.marginalStd(tc);
      const out = new Float32Array(x.data.length);
      const xd = x.data;
      const ed = eps.data;
      for (let i = 0; i < out.length; i++) out[i] = (xd[i] - sigma * ed[i]) / alpha;
      onStep?.(calls, total, tInput);
      calls++;
      return { dtype: 'float32', dims: [...x.dims], data: out };
    },
  };
}
