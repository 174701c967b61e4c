// The driver of a backend group: prompt → context (text encoder) → seeded z_init → DPM-Solver++ with classifier-free
// guidance over a network forward (the in-process Engine or the stage pipeline client) → latent decoder → RGB frames →
// H.264 MP4 (and its content variants when asked, by the same ffmpeg process). Reports progress per sampler step and
// per-phase timings.
import type { Tensor } from '../../shared/tensor.ts';
import { derive, type Derived, type UViTConfig } from '../model/config.ts';
import {
  combineCfg,
  concatBatch,
  defaultNoiseSchedule,
  epsFrom,
  repeatContext,
  sample,
  sliceBatch,
  type ModelInputs,
  type Prediction,
  type SolverName,
} from '../sampler/index.ts';
import type { DecoderConfig, Frames } from './decoder.ts';
import { jobNoise } from './rng.ts';
import { encodeMp4 } from './ffmpeg.ts';
import type { Launch } from './launcher.ts';
import type { Variant } from './variants.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';
import type { PromptEncoder } from './text/encoder.ts';

/** Which network call this is, so a pipeline can keep several micro-batches of several jobs in flight. */
export interface CallTag {
  jobId: string;
  /** model evaluation index within the job, 0-based */
  step: number;
  /** 0 = cond (or the whole 2B batch), 1 = uncond in 'micro' CFG mode */
  microBatch: number;
}

/** A network forward: eps for the inputs. The Engine adapter ignores the tag; the pipeline client uses it. */
export type Forward = (inputs: ModelInputs, tag: CallTag) => Promise<Tensor<'float32'>>;

/** Adapts anything with `forward(inputs)` (the in-process Engine) to a Forward. */
export function engineForward(engine: { forward(i: ModelInputs): Promise<Tensor<'float32'>> }): Forward {
  return (inputs) => engine.forward(inputs);
}

/** Adapts the pipeline client's `forward(jobId, step, microBatch, inputs)` to a Forward. */
export function pipelineForward(client: {
  forward(jobId: string, step: number, microBatch: number, inputs: ModelInputs): Promise<Tensor<'float32'>>;
}): Forward {
  return (inputs, tag) => client.forward(tag.jobId, tag.step, tag.microBatch, inputs);
}

export type Phase = 'text' | 'sample' | 'decode' | 'mp4';

export interface ProgressEvent {
  jobId: string;
  phase: Phase;
  /** sampler step (1-based) and total, in the 'sample' phase */
  step?: number;
  total?: number;
  /** overall progress 0..100 */
  percent: number;
}

export interface ClipRequest {
  jobId: string;
  prompt: string;
  seed: number;
  steps: number;
  /** CFG scale s in eps = cond + s·(cond − uncond); 0 disables CFG */
  guidance: number;
  solver?: SolverName;
  /** 'batch': one 2B forward per step; 'micro': cond and uncond as two concurrent micro-batches (pipeline) */
  cfgMode?: 'batch' | 'micro';
  /** output frames; the latent clip is ceil(numFrames / temporal) frames rounded up to the temporal patch size */
  numFrames: number;
  fps: number;
  /** output path of the MP4 */
  out: string;
  /** path prefix of the content variants (variants.ts) to make beside the MP4; none when absent */
  variants?: string;
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface PhaseTimings {
  textMs: number;
  sampleMs: number;
  decodeMs: number;
  mp4Ms: number;
  totalMs: number;
}

export interface ClipResult {
  path: string;
  bytes: number;
  frames: number;
  fps: number;
  width: number;
  height: number;
  latentFrames: number;
  steps: number;
  stepsPerSecond: number;
  timings: PhaseTimings;
  /** the content variants asked for in the request, empty if none */
  variants: Variant[];
}

/** Latents → frames: a LatentDecoder, or the same on its own thread (decodeThread.ts) so that sampling goes on. */
export interface ClipDecoder {
  readonly cfg: DecoderConfig;
  decode(latents: Tensor<'float32'>, keepFrames?: number): Promise<Frames[]>;
}

export interface DriverOptions {
  model: UViTConfig;
  forward: Forward;
  textEncoder: PromptEncoder;
  decoder: ClipDecoder;
  /** what the network predicts (default eps); a v network's output is turned into eps for the samplers */
  prediction?: Prediction;
  metrics?: DriverMetrics;
  /** how ffmpeg is started (default: a child of this process; a serving driver uses a Launcher, launcher.ts) */
  launch?: Launch;
}

// share of overall progress per phase (text, sample, decode, mp4)
const PCT = { text: 2, sample: 88, decode: 6, mp4: 4 };

export class Driver {
  readonly model: UViTConfig;
  readonly derived: Derived;
  private readonly o: DriverOptions;
  private emptyCtx?: Promise<Tensor<'float32'>>;

  constructor(o: DriverOptions) {
    this.o = o;
    this.model = o.model;
    this.derived = derive(o.model);
    if (this.derived.variant !== 'text') throw new Error(`driver: the model must be text-conditioned, got ${this.derived.variant}`);
    if (!this.derived.video) throw new Error('driver: the model must be a video config (num_frames, temporal_patch_size)');
    const te = o.textEncoder.cfg;
    if (te.num_tokens !== o.model.num_clip_token || te.dim !== o.model.clip_dim) {
      throw new Error(`driver: text encoder gives [${te.num_tokens}, ${te.dim}] but the model wants context ` +
        `[num_clip_token ${o.model.num_clip_token}, clip_dim ${o.model.clip_dim}]`);
    }
  }

  /** Output frame size (width = height for U-ViT's square latents). */
  get frameSize(): { width: number; height: number } {
    const side = this.derived.S * this.o.decoder.cfg.spatial;
    return { width: side, height: side };
  }

  /** Largest clip in output frames. */
  get maxFrames(): number {
    return this.derived.F * this.o.decoder.cfg.temporal;
  }

  /** Bytes the largest clip holds on the driver once decoded: its RGB frames as float32 and as uint8. */
  get clipBytes(): number {
    const { width, height } = this.frameSize;
    return this.maxFrames * width * height * 3 * (4 + 1);
  }

  /** Latent frames for `numFrames` output frames; throws a precise error when the model cannot make that clip. */
  latentFramesFor(numFrames: number): number {
    const t = this.o.decoder.cfg.temporal;
    const pt = this.derived.pt;
    if (!Number.isInteger(numFrames) || numFrames < 1) throw new Error(`num_frames must be a positive integer, got ${numFrames}`);
    const F = Math.ceil(Math.ceil(numFrames / t) / pt) * pt;
    if (F > this.derived.F) {
      throw new Error(`clip of ${numFrames} frames needs ${F} latent frames, but the model makes at most ` +
        `${this.derived.F} (= ${this.maxFrames} frames)`);
    }
    return F;
  }

  private emptyContext(): Promise<Tensor<'float32'>> {
    this.emptyCtx ??= this.o.textEncoder.encode(['']).catch((e: unknown) => {
      this.emptyCtx = undefined; // do not cache a failure
      throw e;
    });
    return this.emptyCtx;
  }

  async generate(req: ClipRequest): Promise<ClipResult> {
    const m = this.o.metrics;
    m?.jobsInFlight.inc(1);
    const t0 = performance.now();
    try {
      const r = await this.run(req, t0);
      m?.jobs.inc({ status: 'completed' });
      m?.jobLatency.observe(r.timings.totalMs / 1000);
      return r;
    } catch (e) {
      m?.jobs.inc({ status: req.signal?.aborted ? 'cancelled' : 'failed' });
      throw e;
    } finally {
      m?.jobsInFlight.dec();
    }
  }

  private async run(req: ClipRequest, t0: number): Promise<ClipResult> {
    const { jobId, signal } = req;
    const m = this.o.metrics;
    const d = this.derived;
    if (!Number.isInteger(req.steps) || req.steps < 1) throw new Error(`steps must be a positive integer, got ${req.steps}`);
    if (!Number.isFinite(req.guidance) || req.guidance < 0) throw new Error(`guidance must be >= 0, got ${req.guidance}`);
    const F = this.latentFramesFor(req.numFrames);
    const progress = (phase: Phase, percent: number, step?: number, total?: number) =>
      req.onProgress?.({ jobId, phase, percent: Math.min(100, Math.round(percent * 10) / 10), step, total });
    const check = () => {
      if (signal?.aborted) throw new Error(`job ${jobId} cancelled`);
    };
    const phaseDone = (phase: Phase, ms: number) => m?.phaseSeconds.inc({ phase }, ms / 1000);

    // 1. text
    check();
    let t = performance.now();
    progress('text', 0);
    const cond = await this.o.textEncoder.encode([req.prompt]);
    const cfg = req.guidance > 0;
    const uncond = cfg ? repeatContext(await this.emptyContext(), 1) : undefined;
    const textMs = performance.now() - t;
    phaseDone('text', textMs);

    // 2. sample
    check();
    t = performance.now();
    const zDims = [1, d.C, F, d.S, d.S];
    const noise = jobNoise(req.seed, zDims.slice(1));
    const xT: Tensor<'float32'> = { dtype: 'float32', dims: zDims, data: noise.initial };
    const mode = req.cfgMode ?? 'batch';
    let call = 0;
    const fwd = this.o.forward;
    const epsFn = async (x: Tensor<'float32'>, tInput: number): Promise<Tensor<'float32'>> => {
      check();
      const step = call++;
      const B = x.dims[0];
      const ts = (b: number): Tensor<'float32'> => ({ dtype: 'float32', dims: [b], data: new Float32Array(b).fill(tInput) });
      if (!cfg) return fwd({ x, timesteps: ts(B), context: cond }, { jobId, step, microBatch: 0 });
      if (mode === 'batch') {
        const out = await fwd(
          { x: concatBatch(x, x), timesteps: ts(2 * B), context: concatBatch(cond, uncond!) },
          { jobId, step, microBatch: 0 },
        );
        return combineCfg(sliceBatch(out, 0, B), sliceBatch(out, B, B), req.guidance);
      }
      const [c, u] = await Promise.all([
        fwd({ x, timesteps: ts(B), context: cond }, { jobId, step, microBatch: 0 }),
        fwd({ x, timesteps: ts(B), context: uncond! }, { jobId, step, microBatch: 1 }),
      ]);
      return combineCfg(c, u, req.guidance);
    };
    progress('sample', PCT.text, 0, req.steps);
    const z0 = await sample(req.solver ?? 'dpmpp-fast3', epsFrom(this.o.prediction ?? 'eps', defaultNoiseSchedule(), epsFn), xT, {
      steps: req.steps,
      noise: noise.next,
      onStep: (step, total) => {
        m?.steps.inc(1);
        progress('sample', PCT.text + (PCT.sample * (step + 1)) / total, step + 1, total);
      },
    });
    const sampleMs = performance.now() - t;
    phaseDone('sample', sampleMs);
    const stepsPerSecond = req.steps / (sampleMs / 1000);
    m?.stepsPerSecond.set(stepsPerSecond);

    // 3. decode
    check();
    t = performance.now();
    const [clip] = await this.o.decoder.decode(z0, req.numFrames);
    const decodeMs = performance.now() - t;
    phaseDone('decode', decodeMs);
    progress('decode', PCT.text + PCT.sample + PCT.decode);

    // 4. mp4
    check();
    t = performance.now();
    const mp4 = await encodeMp4(clip.frames, {
      width: clip.width, height: clip.height, fps: req.fps, out: req.out,
      variants: req.variants === undefined ? undefined : { base: req.variants, frames: clip.frames.length },
      launch: this.o.launch,
    });
    const mp4Ms = performance.now() - t;
    phaseDone('mp4', mp4Ms);
    progress('mp4', 100);

    return {
      path: mp4.path,
      bytes: mp4.bytes,
      frames: mp4.frames,
      fps: req.fps,
      width: clip.width,
      height: clip.height,
      latentFrames: F,
      steps: req.steps,
      stepsPerSecond,
      timings: { textMs, sampleMs, decodeMs, mp4Ms, totalMs: performance.now() - t0 },
      variants: mp4.variants,
    };
  }
}
