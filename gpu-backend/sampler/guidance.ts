// Classifier-free guidance as U-ViT's eval scripts do it (docs/model.md §5.5): eps = cond + s·(cond − uncond), only when s > 0.
// Unconditional branch: the null class (num_classes − 1) for class models, an "empty context" for text models.
// The two branches run either as ONE batch of 2B (cond rows first) or as TWO micro-batches whose calls are in flight
// together (the pipeline runtime overlaps them); a per-sample model gives identical results either way.
import { numel, type Tensor } from '../../shared/tensor.ts';
import type { EpsFn } from './types.ts';

const f32 = Math.fround;

/** What a network forward takes (the engine's forward and the stage pipeline share this shape). */
export interface ModelInputs {
  x: Tensor<'float32'>;
  /** [B] float32 network times (t_continuous * 1000) */
  timesteps: Tensor<'float32'>;
  /** [B] int64 class labels (class-conditional models) */
  y?: Tensor<'int64'>;
  /** [B, n, clip_dim] float32 text context (text models) */
  context?: Tensor<'float32'>;
}
export type ModelFn = (inputs: ModelInputs) => Promise<Tensor<'float32'>>;

/** The conditioning of one branch: a label batch, a context batch, or nothing (unconditional model). */
export interface Condition {
  y?: Tensor<'int64'>;
  context?: Tensor<'float32'>;
}

export type CfgMode = 'batch' | 'micro';

export interface GuidanceOptions {
  model: ModelFn;
  cond: Condition;
  /** required when scale > 0 */
  uncond?: Condition;
  scale: number;
  /** 'batch' (one call of 2B) or 'micro' (two concurrent calls of B); default 'batch' */
  mode?: CfgMode;
}

/** [B] int64 filled with the null class num_classes − 1 */
export function nullClassLabels(numClasses: number, batch: number): Tensor<'int64'> {
  if (!(numClasses > 1)) throw new Error(`null class needs num_classes > 1, got ${numClasses}`);
  return { dtype: 'int64', dims: [batch], data: new BigInt64Array(batch).fill(BigInt(numClasses - 1)) };
}

/** An empty context [n, clip_dim] or [1|B, n, clip_dim] repeated to [B, n, clip_dim]. */
export function repeatContext(empty: Tensor<'float32'>, batch: number): Tensor<'float32'> {
  const d = empty.dims;
  let n: number, c: number;
  if (d.length === 2) [n, c] = d;
  else if (d.length === 3 && (d[0] === 1 || d[0] === batch)) [, n, c] = d;
  else throw new Error(`empty context must be [n, clip_dim] or [1|${batch}, n, clip_dim], got [${d.join(',')}]`);
  if (d.length === 3 && d[0] === batch) return empty;
  const per = n * c;
  const out = new Float32Array(batch * per);
  for (let b = 0; b < batch; b++) out.set(empty.data.subarray(0, per), b * per);
  return { dtype: 'float32', dims: [batch, n, c], data: out };
}

/** zeros [B, n, clip_dim]: the documented default empty context when none is supplied */
export function zerosContext(batch: number, n: number, clipDim: number): Tensor<'float32'> {
  return { dtype: 'float32', dims: [batch, n, clipDim], data: new Float32Array(batch * n * clipDim) };
}

export function concatBatch<T extends Tensor>(a: T, b: T): T {
  if (a.dtype !== b.dtype || a.dims.length !== b.dims.length || a.dims.slice(1).some((d, i) => d !== b.dims[i + 1])) {
    throw new Error(`concatBatch: incompatible [${a.dims.join(',')}] ${a.dtype} and [${b.dims.join(',')}] ${b.dtype}`);
  }
  const Ctor = a.data.constructor as new (n: number) => T['data'];
  const data = new Ctor(a.data.length + b.data.length);
  (data as unknown as { set(x: ArrayLike<unknown>, o: number): void }).set(a.data as ArrayLike<unknown>, 0);
  (data as unknown as { set(x: ArrayLike<unknown>, o: number): void }).set(b.data as ArrayLike<unknown>, a.data.length);
  return { dtype: a.dtype, dims: [a.dims[0] + b.dims[0], ...a.dims.slice(1)], data } as T;
}

/** rows [start, start+count) of the batch dimension */
export function sliceBatch(t: Tensor<'float32'>, start: number, count: number): Tensor<'float32'> {
  const per = numel(t.dims.slice(1));
  return { dtype: 'float32', dims: [count, ...t.dims.slice(1)], data: t.data.slice(start * per, (start + count) * per) };
}

function timesteps(batch: number, tInput: number): Tensor<'float32'> {
  return { dtype: 'float32', dims: [batch], data: new Float32Array(batch).fill(f32(tInput)) };
}

function checkCondition(c: Condition, batch: number, what: string): void {
  if (c.y && c.context) throw new Error(`${what}: give y or context, not both`);
  const t = c.y ?? c.context;
  if (t && t.dims[0] !== batch) throw new Error(`${what}: batch ${t.dims[0]} does not match x batch ${batch}`);
}

function concatCondition(a: Condition, b: Condition): Condition {
  if (a.y && b.y) return { y: concatBatch(a.y, b.y) };
  if (a.context && b.context) return { context: concatBatch(a.context, b.context) };
  if (!a.y && !a.context && !b.y && !b.context) return {};
  throw new Error('cond and uncond must be of the same kind (both y or both context)');
}

/** eps = cond + s·(cond − uncond), elementwise */
export function combineCfg(cond: Tensor<'float32'>, uncond: Tensor<'float32'>, scale: number): Tensor<'float32'> {
  if (cond.data.length !== uncond.data.length) throw new Error('combineCfg: cond/uncond size mismatch');
  const out = new Float32Array(cond.data.length);
  for (let i = 0; i < out.length; i++) out[i] = cond.data[i] + scale * (cond.data[i] - uncond.data[i]);
  return { dtype: 'float32', dims: [...cond.dims], data: out };
}

/** Builds the sampler's EpsFn from a network forward, with classifier-free guidance when scale > 0. */
export function guidedEps(opts: GuidanceOptions): EpsFn {
  const { model, cond, uncond, scale } = opts;
  const mode = opts.mode ?? 'batch';
  if (!Number.isFinite(scale)) throw new Error(`guidance scale must be a finite number, got ${scale}`);
  const cfg = scale > 0;
  if (cfg && !uncond) throw new Error(`guidance scale ${scale} > 0 needs an unconditional branch (null class / empty context)`);
  return async (x, tInput) => {
    const B = x.dims[0];
    checkCondition(cond, B, 'cond');
    if (!cfg) return model({ x, timesteps: timesteps(B, tInput), ...cond });
    checkCondition(uncond!, B, 'uncond');
    let epsCond: Tensor<'float32'>, epsUncond: Tensor<'float32'>;
    if (mode === 'batch') {
      const out = await model({ x: concatBatch(x, x), timesteps: timesteps(2 * B, tInput), ...concatCondition(cond, uncond!) });
      epsCond = sliceBatch(out, 0, B);
      epsUncond = sliceBatch(out, B, B);
    } else {
      [epsCond, epsUncond] = await Promise.all([
        model({ x, timesteps: timesteps(B, tInput), ...cond }),
        model({ x, timesteps: timesteps(B, tInput), ...uncond! }),
      ]);
    }
    return combineCfg(epsCond, epsUncond, scale);
  };
}
