// Public surface of the samplers (pure TypeScript; no onnxruntime import anywhere under sampler/).
import type { Tensor } from '../../shared/tensor.ts';
import { ancestral } from './ancestral.ts';
import { dpmSolverPP2M } from './dpmSolverPP2M.ts';
import { dpmSolverFastContinuous } from './continuous.ts';
import { dpmSolverPPFast } from './dpmSolverPPFast.ts';
import type { NoiseScheduleVP } from './schedule.ts';
import { type EpsFn, type SamplerOptions, type SolverName, SOLVERS } from './types.ts';

export * from './types.ts';
export { NoiseScheduleVP, defaultNoiseSchedule } from './schedule.ts';
export { dpmSolverPPFast, fastOrders } from './dpmSolverPPFast.ts';
export { timeUniformGrid } from './timeUniform.ts';
export { dpmSolverPP2M, multistepOrders } from './dpmSolverPP2M.ts';
export { dpmSolverFastContinuous } from './continuous.ts';
export { ancestral } from './ancestral.ts';
export * from './guidance.ts';
export * from './prediction.ts';

export function sample(
  solver: SolverName,
  epsFn: EpsFn,
  xT: Tensor<'float32'>,
  opts: SamplerOptions,
  ns?: NoiseScheduleVP,
): Promise<Tensor<'float32'>> {
  switch (solver) {
    case 'dpmpp-fast3':
      return dpmSolverPPFast(epsFn, xT, opts, ns);
    case 'dpmpp-2m':
      return dpmSolverPP2M(epsFn, xT, opts, ns);
    case 'dpm-solver-fast':
      return dpmSolverFastContinuous(epsFn, xT, opts);
    case 'ancestral':
    case 'renoise':
      return ancestral(epsFn, xT, opts, ns, solver);
    default:
      throw new Error(`unknown solver '${solver as string}' (expected ${SOLVERS.join(' | ')})`);
  }
}
