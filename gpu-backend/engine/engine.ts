// In-process executor: one ONNX Runtime session per segment of a Plan, run in route order with a local skip map.
// The one executor of a plan in a single process: the driver's in-process backend, the CLI (through hooks that
// measure each stage and the bytes a multi-process pipeline would send), the benches and the parity tests.
import { mkdirSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { derive, type Derived, type UViTConfig } from '../model/config.ts';
import type { AttentionImpl } from '../model/build/layers.ts';
import type { WeightSource } from '../model/build/weights.ts';
import { planSequential, validatePlan } from '../partition/index.ts';
import type { Plan } from '../partition/types.ts';
import { type Segment, TENSOR } from '../model/chain.ts';
import type { ExecutionProvider } from './session.ts';
import { type RouteHooks, runRoute } from './route.ts';
import { makeSegmentWorkDir, openSegment } from './segmentLoader.ts';

export interface EngineOptions {
  config: UViTConfig;
  /** safetensors file; each segment reads only its own tensors */
  weightsPath?: string;
  /** or weights in memory (official names) */
  weights?: WeightSource;
  /** default: the single-segment plan */
  plan?: Plan;
  threads?: number;
  ep?: ExecutionProvider;
  deviceId?: number;
  /** see EngineSessionOptions.spin */
  spin?: boolean;
  /** build segments with the golden-named intermediate outputs (see forwardDetailed) */
  intermediates?: boolean;
  attention?: AttentionImpl;
  /**
   * segments over this many parameter bytes are built into an ONNX file with external data and opened by path
   * (peak memory ~1.3x the shard instead of ~4x; default FILE_BUILD_OVER_BYTES of engine/segmentLoader.ts, 64 MiB)
   */
  externalDataOverBytes?: number;
  /** where those files go: given, they are written there and left; default a fresh temp folder removed on release */
  workDir?: string;
  /** called around the loading of each stage's segments (stages in order), e.g. to measure what a stage keeps */
  onStage?: StageLoadHooks;
}

export interface StageLoadHooks {
  before?(stage: number): void;
  after?(stage: number, loaded: { segments: Segment[]; paramBytes: number }): void;
}

export interface ForwardInputs {
  x: Tensor<'float32'>;
  /** float32 (sampling: t*1000, fractional), or int64 / int32 (training-style integers), cast to float32 like torch */
  timesteps: Tensor<'float32'> | Tensor<'int64'> | Tensor<'int32'> | Float32Array;
  /** int64 or int32 labels */
  y?: Tensor<'int64'> | Tensor<'int32'> | BigInt64Array;
  context?: Tensor<'float32'>;
}

export interface SegmentTiming {
  segment: number;
  stage: number;
  start: number;
  end: number;
  ms: number;
}

export interface ForwardResult {
  eps: Tensor<'float32'>;
  /** golden-named intermediates (only when built with intermediates) */
  intermediates: Map<string, Tensor<'float32'>>;
  timings: SegmentTiming[];
}

interface LoadedSegment {
  segment: Segment;
  session: ort.InferenceSession;
  paramBytes: number;
  buildMs: number;
}

const toTensor = (v: ort.Tensor): Tensor<'float32'> => float32([...v.dims], v.data as Float32Array);

export class Engine {
  readonly config: UViTConfig;
  readonly derived: Derived;
  readonly plan: Plan;
  readonly segments: LoadedSegment[];

  /** the temp folder this engine made for its segment files (removed on release) */
  private readonly ownDir?: string;

  private constructor(config: UViTConfig, plan: Plan, segments: LoadedSegment[], ownDir?: string) {
    this.config = config;
    this.derived = derive(config);
    this.plan = plan;
    this.segments = segments;
    this.ownDir = ownDir;
  }

  static async create(o: EngineOptions): Promise<Engine> {
    const d = derive(o.config);
    if ((o.weightsPath === undefined) === (o.weights === undefined)) {
      throw new Error('Engine.create: give exactly one of weightsPath and weights');
    }
    const plan = o.plan ?? planSequential(o.config, 1);
    validatePlan(plan, d.n);
    const loaded: LoadedSegment[] = [];
    let ownDir: string | undefined;
    const workDir = () => {
      if (o.workDir === undefined) return (ownDir ??= makeSegmentWorkDir());
      mkdirSync(o.workDir, { recursive: true });
      return o.workDir;
    };
    try {
      for (const info of [...plan.stages].sort((a, b) => a.stage - b.stage)) {
        o.onStage?.before?.(info.stage);
        const segs = info.segments.map((i) => plan.segments[i]);
        let paramBytes = 0;
        for (const seg of segs) {
          const l = await loadSegment(o, seg, workDir);
          loaded.push(l);
          paramBytes += l.paramBytes;
        }
        o.onStage?.after?.(info.stage, { segments: segs, paramBytes });
      }
      loaded.sort((a, b) => a.segment.index - b.segment.index);
    } catch (e) {
      for (const l of loaded) await l.session.release();
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
      throw e;
    }
    return new Engine(o.config, plan, loaded, ownDir);
  }

  /** `hooks` see every hand-over between segments and every segment run */
  async forward(inputs: ForwardInputs, hooks?: RouteHooks): Promise<Tensor<'float32'>> {
    return (await this.forwardDetailed(inputs, hooks)).eps;
  }

  async forwardDetailed(inputs: ForwardInputs, hooks: RouteHooks = {}): Promise<ForwardResult> {
    const intermediates = new Map<string, Tensor<'float32'>>();
    const timings: SegmentTiming[] = [];
    const out = await runRoute(this.segments, this.inputFeeds(inputs), {
      onHandOver: hooks.onHandOver,
      onRun: (r, outputs, ms) => {
        hooks.onRun?.(r, outputs, ms);
        const { segment: s, session } = r;
        timings.push({ segment: s.index, stage: s.stage, start: s.start, end: s.end, ms });
        for (const name of session.outputNames) {
          if (name === TENSOR.eps || name === TENSOR.hOut || name.startsWith('skip_')) continue;
          intermediates.set(name, toTensor(outputs[name]));
        }
      },
    });
    return { eps: toTensor(out), intermediates, timings };
  }

  async release(): Promise<void> {
    for (const s of this.segments) await s.session.release();
    if (this.ownDir) rmSync(this.ownDir, { recursive: true, force: true });
  }

  /** Validates the model inputs against the config and wraps them as ORT tensors. */
  private inputFeeds(inp: ForwardInputs): Record<string, ort.Tensor> {
    const d = this.derived;
    const { x } = inp;
    const B = x.dims[0];
    const frames = d.video ? x.dims[2] : undefined;
    const want = d.inputShape(B, frames);
    if (!(B >= 1) || x.dims.length !== want.length || x.dims.some((v, i) => v !== want[i])) {
      throw new Error(`input x has shape [${x.dims}], expected [${d.video ? 'B,C,F\',S,S' : 'B,C,S,S'}] = [${want}]` +
        (d.video ? ` with F' a multiple of ${d.pt} up to ${d.F}` : ''));
    }
    if (x.dtype !== 'float32') throw new Error(`input x has dtype ${x.dtype}, expected float32`);
    const t = toFloat32Timesteps(inp.timesteps);
    if (t.length !== B) throw new Error(`timesteps has ${t.length} entries, expected batch ${B}`);
    const feeds: Record<string, ort.Tensor> = {
      [TENSOR.x]: new ort.Tensor('float32', x.data, x.dims),
      [TENSOR.timesteps]: new ort.Tensor('float32', t, [B]),
    };
    if (d.variant === 'class') {
      if (!inp.y) throw new Error('class-conditional model needs y (labels)');
      const y = toInt64Labels(inp.y);
      if (y.length !== B) throw new Error(`y has ${y.length} labels, expected batch ${B}`);
      for (const v of y) {
        if (v < 0n || v >= BigInt(d.numClasses)) throw new Error(`label ${v} is out of range [0, ${d.numClasses})`);
      }
      feeds[TENSOR.y] = new ort.Tensor('int64', y, [B]);
    } else if (inp.y) throw new Error(`y given, but the model is ${d.variant}-conditioned`);
    if (d.variant === 'text') {
      const c = inp.context;
      const n = d.extras - 1;
      const clip = this.config.clip_dim!;
      if (!c) throw new Error('text-conditioned model needs context');
      if (c.dims.length !== 3 || c.dims[0] !== B || c.dims[1] !== n || c.dims[2] !== clip) {
        throw new Error(`context has shape [${c.dims}], expected [${B},${n},${clip}]`);
      }
      feeds[TENSOR.context] = new ort.Tensor('float32', c.data, c.dims);
    } else if (inp.context) throw new Error(`context given, but the model is ${d.variant}-conditioned`);
    return feeds;
  }
}

function toFloat32Timesteps(t: ForwardInputs['timesteps']): Float32Array {
  if (t instanceof Float32Array) return t;
  if (t.dtype === 'float32') return t.data as Float32Array;
  if (t.dtype === 'int64') return Float32Array.from(t.data as BigInt64Array, (v) => Number(v));
  if (t.dtype === 'int32') return Float32Array.from(t.data as Int32Array);
  throw new Error(`timesteps have dtype ${(t as Tensor).dtype}, expected float32, int64 or int32`);
}

function toInt64Labels(y: NonNullable<ForwardInputs['y']>): BigInt64Array {
  if (y instanceof BigInt64Array) return y;
  if (y.dtype === 'int64') return y.data as BigInt64Array;
  if (y.dtype === 'int32') return BigInt64Array.from(y.data as Int32Array, (v) => BigInt(v));
  throw new Error(`y has dtype ${(y as Tensor).dtype}, expected int64 or int32`);
}

async function loadSegment(o: EngineOptions, seg: Segment, workDir: () => string): Promise<LoadedSegment> {
  const t0 = performance.now();
  const { session, paramBytes } = await openSegment(o.config, seg, {
    weightsPath: o.weightsPath,
    weights: o.weights,
    intermediates: o.intermediates,
    attention: o.attention,
    session: { threads: o.threads, ep: o.ep, deviceId: o.deviceId, spin: o.spin },
    fileOverBytes: o.externalDataOverBytes,
    workDir,
  });
  return { segment: seg, session, paramBytes, buildMs: performance.now() - t0 };
}
