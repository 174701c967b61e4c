// One image job of a 2-D U-ViT (the official image checkpoints): class label or CLIP text → seeded z_init → the
// config's sampler (discrete DPM-Solver++ or continuous-time DPM-Solver) with classifier-free guidance over a network
// forward (in-process engine or stage pipeline) → autoencoder decode (latent models) or the pixels themselves → PNG.
// As the official scripts: the unconditional branch is the null class (num_classes − 1) or the CLIP encoding of "".
import type { Tensor } from '../../shared/tensor.ts';
import { derive, type Derived, type UViTConfig } from '../model/config.ts';
import { type Condition, guidedEps, nullClassLabels, repeatContext, sample, type SolverName } from '../sampler/index.ts';
import type { CallTag, Forward, ProgressEvent } from './driver.ts';
import { encodePng, toRgbBytes } from './png.ts';
import { jobNoise } from './rng.ts';

/** Prompt → context [B, num_clip_token, clip_dim] (the CLIP text encoder of the MS-COCO models). */
export interface ContextEncoder {
  encode(prompts: string[]): Promise<Tensor<'float32'>>;
}

export interface ImageDriverOptions {
  model: UViTConfig;
  forward: Forward;
  solver: SolverName;
  /** latent models: FrozenAutoencoderKL.decode (divides by the scale factor itself); absent for pixel models */
  decode?: (z: Tensor<'float32'>) => Promise<Tensor<'float32'>>;
  /** the image side in pixels the decode makes of the S×S latent (S for pixel models) */
  resolution: number;
  /** text models only */
  textEncoder?: ContextEncoder;
}

export interface ImageRequest {
  jobId: string;
  n: number;
  seed: number;
  steps: number;
  /** CFG scale s in eps = cond + s·(cond − uncond); 0 disables CFG */
  guidance: number;
  /** class models */
  classLabel?: number;
  /** text models */
  prompt?: string;
  cfgMode?: 'batch' | 'micro';
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface ImageResult {
  /** one PNG per image, in order */
  pngs: Buffer[];
  width: number;
  height: number;
  timings: { textMs: number; sampleMs: number; decodeMs: number; totalMs: number };
}

// share of overall progress per phase (text, sample, decode + png)
const PCT = { text: 2, sample: 90, decode: 8 };

export class ImageDriver {
  readonly derived: Derived;
  private readonly o: ImageDriverOptions;
  private emptyCtx?: Promise<Tensor<'float32'>>;

  constructor(o: ImageDriverOptions) {
    this.o = o;
    this.derived = derive(o.model);
    if (this.derived.video) throw new Error('image driver: the model is a video config (num_frames); images need a 2-D config');
    if (this.derived.variant === 'text' && !o.textEncoder) throw new Error('image driver: a text model needs its text encoder');
    if (!o.decode && o.resolution !== this.derived.S) {
      throw new Error(`image driver: a pixel model makes ${this.derived.S}x${this.derived.S} images, not ${o.resolution}`);
    }
  }

  /** Image size in pixels (U-ViT's latents are square). */
  get size(): { width: number; height: number } {
    return { width: this.o.resolution, height: this.o.resolution };
  }

  /** Why the model cannot make this request (null when it can): the conditioning it needs. */
  problem(req: Pick<ImageRequest, 'classLabel' | 'prompt' | 'guidance'>): string | null {
    const d = this.derived;
    if (d.variant === 'class') {
      // with a null class (CFG), the real classes are 0 … num_classes − 2
      const classes = req.guidance > 0 ? d.numClasses - 1 : d.numClasses;
      if (req.classLabel === undefined) return 'a class-conditional model needs class_label';
      if (!Number.isInteger(req.classLabel) || req.classLabel < 0 || req.classLabel >= classes)
        return `class_label must be an integer in [0, ${classes - 1}], got ${req.classLabel}`;
    } else if (req.guidance > 0 && d.variant === 'uncond') return `guidance ${req.guidance} > 0 needs a conditional model; this one is unconditional`;
    return null;
  }

  private emptyContext(): Promise<Tensor<'float32'>> {
    this.emptyCtx ??= this.o.textEncoder!.encode(['']).catch((e: unknown) => {
      this.emptyCtx = undefined; // do not cache a failure
      throw e;
    });
    return this.emptyCtx;
  }

  async generate(req: ImageRequest): Promise<ImageResult> {
    const t0 = performance.now();
    const d = this.derived;
    const { jobId, n, signal } = req;
    if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
    if (!Number.isInteger(req.steps) || req.steps < 1) throw new Error(`steps must be a positive integer, got ${req.steps}`);
    const why = this.problem(req);
    if (why) throw new Error(why);
    const progress = (phase: ProgressEvent['phase'], percent: number, step?: number, total?: number) =>
      req.onProgress?.({ jobId, phase, percent: Math.min(100, Math.round(percent * 10) / 10), step, total });
    const check = () => {
      if (signal?.aborted) throw new Error(`job ${jobId} cancelled`);
    };

    // 1. conditioning
    let t = performance.now();
    progress('text', 0);
    let cond: Condition = {};
    let uncond: Condition | undefined;
    if (d.variant === 'class') {
      cond = { y: { dtype: 'int64', dims: [n], data: new BigInt64Array(n).fill(BigInt(req.classLabel!)) } };
      if (req.guidance > 0) uncond = { y: nullClassLabels(d.numClasses, n) };
    } else if (d.variant === 'text') {
      cond = { context: repeatContext(await this.o.textEncoder!.encode([req.prompt ?? '']), n) };
      if (req.guidance > 0) uncond = { context: repeatContext(await this.emptyContext(), n) };
    }
    const textMs = performance.now() - t;

    // 2. sample: item b of the batch starts from Rng(seed + b)
    check();
    t = performance.now();
    const dims = d.inputShape(n);
    const noise = jobNoise(req.seed, dims.slice(1), n);
    const xT: Tensor<'float32'> = { dtype: 'float32', dims, data: noise.initial };
    let call = 0;
    const eps = guidedEps({
      // guidedEps calls the model once (batch) or twice per step (micro: cond, then uncond with uncond's own tensor);
      // the pipeline needs each call tagged with its step and micro-batch
      model: (inputs) => {
        check();
        const isUncond = uncond !== undefined && req.cfgMode === 'micro' && (inputs.y ?? inputs.context) === (uncond.y ?? uncond.context);
        const tag: CallTag = { jobId, step: isUncond ? call - 1 : call++, microBatch: isUncond ? 1 : 0 };
        return this.o.forward(inputs, tag);
      },
      cond,
      uncond,
      scale: req.guidance,
      mode: req.cfgMode ?? 'batch',
    });
    progress('sample', PCT.text, 0, req.steps);
    const z0 = await sample(this.o.solver, eps, xT, {
      steps: req.steps,
      noise: noise.next,
      onStep: (step, total) => progress('sample', PCT.text + (PCT.sample * (step + 1)) / total, step + 1, total),
    });
    const sampleMs = performance.now() - t;

    // 3. decode and PNG
    check();
    t = performance.now();
    const images = this.o.decode ? await this.o.decode(z0) : z0;
    const [, , H, W] = images.dims;
    if (H !== this.o.resolution || W !== this.o.resolution) {
      throw new Error(`image driver: the decoder made ${W}x${H} images, expected ${this.o.resolution}x${this.o.resolution}`);
    }
    const pngs = toRgbBytes(images).map((rgb) => encodePng(rgb, W, H));
    const decodeMs = performance.now() - t;
    progress('decode', PCT.text + PCT.sample + PCT.decode);
    return { pngs, width: W, height: H, timings: { textMs, sampleMs, decodeMs, totalMs: performance.now() - t0 } };
  }
}
