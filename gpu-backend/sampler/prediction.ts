// What the network predicts, and how the samplers get noise from it. The samplers are written for noise prediction
// (eps, the official U-ViT). A v-predicting network (v = alpha_t·eps − sigma_t·x0) is turned into one the way the
// official DPM-Solver's model_wrapper does for model_type='v': eps = alpha_t·v + sigma_t·x_t. Why v: its data
// prediction x0 = alpha_t·x_t − sigma_t·v has no 1/alpha_t, so at high noise (alpha ~ 0.07 at t = T on the discrete
// schedule) the network's error is not multiplied by ~15 as an eps network's is. An x0-predicting network (the clean
// sample itself, model_type='x_start' there) gives eps = (x_t − alpha_t·x0) / sigma_t. Why x0: a token with more values
// than the network's width cannot carry its noise through, and an x0 network never has to output noise.
// Guidance may be combined before or after this map: it is affine in the output with coefficients that sum to 1.
import { assertSameShape, linComb } from './ops.ts';
import type { NoiseScheduleVP } from './schedule.ts';
import type { EpsFn } from './types.ts';

export const PREDICTIONS = ['eps', 'v', 'x0'] as const;
export type Prediction = (typeof PREDICTIONS)[number];

/** `modelFn` returns the network's output at time input tInput = t·N; the result returns eps. */
export function epsFrom(prediction: Prediction, ns: NoiseScheduleVP, modelFn: EpsFn): EpsFn {
  if (prediction === 'eps') return modelFn;
  return async (x, tInput) => {
    const out = await modelFn(x, tInput);
    assertSameShape(x, out, `${prediction} prediction at t_input=${tInput}`);
    const t = tInput / ns.totalN;
    const [alpha, sigma] = [ns.marginalAlpha(t), ns.marginalStd(t)];
    if (prediction === 'v') return linComb([alpha, out], [sigma, x]);
    return linComb([1 / sigma, x], [-alpha / sigma, out]);
  };
}
