// What a stage accepts, decided from a frame's header before its payload is read: every tensor it takes has a shape
// envelope derived from the model config (at most maxBatch items), so an oversized batch is refused before any memory
// is spent on it. Also the stage's memory bound and its timeouts for slow or idle connections.
import type { FrameHeader } from '../../../shared/frame.ts';
import { derive, type UViTConfig } from '../../model/config.ts';

export interface StageLimits {
  /** items per tensor (the batch dimension) */
  maxBatch: number;
  /** tensor bytes held for all jobs together (received and waiting for their unit, plus frames being received) */
  maxHeldBytes: number;
  /** a new connection must complete the handshake within this */
  handshakeMs: number;
  /** an authenticated connection that sends nothing and has nothing held is closed after this */
  idleMs: number;
  /** a connection that stops halfway through a frame, or does not read what it is sent, is dropped after this */
  stallMs: number;
  /** jobs open per driver; beyond it the least recently used one with nothing held here is forgotten */
  maxJobsPerDriver: number;
}

/** the driver's default window is 4 micro-batches per stage (client/scheduler.ts); twice that fits in memory */
const FORWARDS_HELD_PER_STAGE = 8;

interface Envelope {
  dtype: 'float32' | 'int64';
  maxDims: number[];
}

export class TensorEnvelopes {
  readonly maxBatch: number;
  private readonly x: number[];
  private readonly context: number[] | undefined;
  private readonly tokens: number[];

  constructor(config: UViTConfig, maxBatch: number) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`max batch must be a positive integer, got ${maxBatch}`);
    const d = derive(config);
    this.maxBatch = maxBatch;
    this.x = d.inputShape(maxBatch);
    this.context = config.clip_dim !== undefined ? [maxBatch, config.num_clip_token!, config.clip_dim] : undefined;
    this.tokens = [maxBatch, d.T, d.D];
  }

  /** model inputs by slot name; every other name (activations, skips) is a token tensor [B, T, D] */
  private of(name: string): Envelope {
    switch (name) {
      case 'x': return { dtype: 'float32', maxDims: this.x };
      case 'timesteps': return { dtype: 'float32', maxDims: [this.maxBatch] };
      case 'y': return { dtype: 'int64', maxDims: [this.maxBatch] };
      case 'context':
        if (!this.context) throw new Error('this model takes no context');
        return { dtype: 'float32', maxDims: this.context };
      default: return { dtype: 'float32', maxDims: this.tokens };
    }
  }

  /** why a frame with this header cannot carry tensor `name`, or undefined when it fits */
  refuse(name: string, h: Pick<FrameHeader, 'dtype' | 'dims'>): string | undefined {
    const e = this.of(name);
    if (h.dtype !== e.dtype) return `${name} must be ${e.dtype}, got ${h.dtype}`;
    const fits = h.dims.length === e.maxDims.length && h.dims.every((n, i) => n <= e.maxDims[i]);
    if (!fits) return `${name} of dims [${h.dims.join(',')}] exceeds [${e.maxDims.join(',')}] (batch at most ${this.maxBatch}, sizes from the model config)`;
    return undefined;
  }

  /** bytes of the largest tensor `name` can be */
  maxBytes(name: string): number {
    const e = this.of(name);
    return e.maxDims.reduce((a, b) => a * b, 1) * (e.dtype === 'int64' ? 8 : 4);
  }
}

/** defaults: batch 4 (CFG as one 2-item batch needs 2); memory for FORWARDS_HELD_PER_STAGE forwards per stage */
export function defaultLimits(env: TensorEnvelopes, accepted: readonly string[], numStages: number): StageLimits {
  const perForward = accepted.reduce((a, n) => a + env.maxBytes(n), 0);
  return {
    maxBatch: env.maxBatch,
    maxHeldBytes: Math.max(64 * 2 ** 20, FORWARDS_HELD_PER_STAGE * numStages * perForward),
    handshakeMs: 5000,
    idleMs: 10 * 60_000,
    stallMs: 60_000,
    maxJobsPerDriver: 1024,
  };
}

export const DEFAULT_MAX_BATCH = 4;
