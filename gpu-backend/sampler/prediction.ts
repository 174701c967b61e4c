// What the network predicts, and how the samplers get noise from it. The samplers are written for noise prediction
// (eps, the official U-ViT). A v-predicting network (v = alpha_t·eps − sigma_t·x0) is turned into one the way the
// official DPM-Solver's model_wrapper does for model_type='v': eps = alpha_t·v + sigma_t·x_t. Why v: its data
// prediction x0 = alpha_t·x_t − sigma_t·v has no 1/alpha_t, so at high noise (alpha ~ 0.07 at t = T on the discrete
// schedule) the network's error is not multiplied by ~15 as an eps network's is.
// Guidance may be combined before or after this map: it is affine in the output with coefficients that sum to 1.
import { assertSameShape, linComb } from './ops.ts';
import type { NoiseScheduleVP } from './schedule.ts';
import type { EpsFn } from './types.ts';

export const PREDICTIONS = ['eps', 'v'] as const;
export type Prediction = (typeof PREDICTIONS)[number];

/** `modelFn` returns the network's output at time input tInput = t·N; the result returns eps. */
export function epsFrom(prediction: Prediction, ns: NoiseScheduleVP, modelFn: EpsFn): EpsFn {
  if (prediction === 'eps') return modelFn;
  return async (x, tInput) => {
    const v = await modelFn(x, tInput);
    assertSameShape(x, v, `v prediction at t_input=${tInput}`);
    const t = tInput / ns.totalN;
    return linComb([ns.marginalAlpha(t), v], [ns.marginalStd(t), x]);
  };
}
