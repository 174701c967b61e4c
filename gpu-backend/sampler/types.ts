// Shared sampler types. Samplers are pure: they only see an async eps-prediction function.
import type { Tensor } from '../../shared/tensor.ts';

/**
 * Noise prediction at the network's time input `tInput` = t_continuous * N (a float32 value such as 900.0999755859375).
 * `x` carries the whole batch B; the result has the same shape as `x`.
 */
export type EpsFn = (x: Tensor<'float32'>, tInput: number) => Promise<Tensor<'float32'>>;

/** Called after each model evaluation: `step` is 0-based (0..total-1), `tInput` the time the model was called at. */
export type OnStep = (step: number, total: number, tInput: number) => void;

export interface SamplerOptions {
  /** number of model evaluations (NFE) */
  steps: number;
  onStep?: OnStep;
  /** start time (default 1 = schedule T) and end time (default 1/N), continuous time */
  tStart?: number;
  tEnd?: number;
  /** a fresh array of N(0, 1) values of the sample's size per call; the ancestral sampler needs it */
  noise?: () => Float32Array;
}

/**
 * dpmpp-fast3 / dpmpp-2m: DPM-Solver++ on the discrete-time schedule (dpm_solver_pp.py); dpm-solver-fast: DPM-Solver
 * on the continuous-time linear VP SDE (dpm_solver_pytorch.py, continuous.ts), for the continuous-time checkpoints;
 * ancestral: DDPM-style ancestral sampling on the discrete-time schedule; renoise: the same grid, each step noising
 * the clean-clip prediction afresh (both ancestral.ts).
 */
export type SolverName = 'dpmpp-fast3' | 'dpmpp-2m' | 'dpm-solver-fast' | 'ancestral' | 'renoise';
export const SOLVERS: readonly SolverName[] = ['dpmpp-fast3', 'dpmpp-2m', 'dpm-solver-fast', 'ancestral', 'renoise'];
