// Latents → RGB frames through a pluggable ONNX decoder.
//   layout 'video': one call on [B, C, F, h, w] → [B, 3, temporal·F, spatial·h, spatial·w] (the demo decoder).
//   layout 'image': a per-frame 2-D VAE (e.g. Stable Diffusion's AutoencoderKL decoder exported to ONNX,
//                   latent_sample [N, 4, h, w] → sample [N, 3, 8h, 8w] in [-1, 1]); frames are decoded in chunks.
// The latents are divided by `scale_factor` first, as U-ViT's decode(z) = VAE.decode(z / scale_factor) (docs/model.md §4):
// 0.18215 for the SD VAE (0.23010 for the mscoco model's eval). The demo decoder uses 1.
import type * as ort from 'onnxruntime-node';
import * as ortRt from 'onnxruntime-node';
import * as z from 'zod';
import type { Tensor } from '../../shared/tensor.ts';
import { EpConfigSchema, type EpConfig, fromOrtF32, openSession } from './ort.ts';

export const DecoderConfigSchema = z
  .object({
    onnx: z.string().min(1),
    layout: z.enum(['video', 'image']).default('video'),
    input: z.string().default('latents'),
    output: z.string().default('frames'),
    temporal: z.number().int().min(1).default(1),
    spatial: z.number().int().min(1).default(8),
    scale_factor: z.number().positive().default(1),
    output_range: z.enum(['0,1', '-1,1']).default('0,1'),
    /** image layout: latent frames per decoder call */
    frames_per_call: z.number().int().min(1).default(8),
    ep: EpConfigSchema.optional(),
  })
  .strict();
export type DecoderConfig = z.infer<typeof DecoderConfigSchema>;

/** Decoded clip of one batch item: packed RGB24 frames, row-major. */
export interface Frames {
  width: number;
  height: number;
  frames: Uint8Array[];
}

export class LatentDecoder {
  readonly cfg: DecoderConfig;
  private readonly session: ort.InferenceSession;

  private constructor(cfg: DecoderConfig, session: ort.InferenceSession) {
    this.cfg = cfg;
    this.session = session;
    if (!session.inputNames.includes(cfg.input)) {
      throw new Error(`decoder ${cfg.onnx}: no input "${cfg.input}" (inputs: ${session.inputNames.join(', ')})`);
    }
    if (!session.outputNames.includes(cfg.output)) {
      throw new Error(`decoder ${cfg.onnx}: no output "${cfg.output}" (outputs: ${session.outputNames.join(', ')})`);
    }
    // frames are RGB whatever the latent's channels (RGB + masks, a VAE's 4): refuse any other channel count at load
    const meta = session.outputMetadata.find((m) => m.name === cfg.output);
    if (meta?.isTensor && typeof meta.shape[1] === 'number' && meta.shape[1] !== 3) {
      throw new Error(`decoder ${cfg.onnx}: output "${cfg.output}" is [${meta.shape.join(',')}], ${meta.shape[1]} channels, ` +
        'but frames are RGB: it must give 3');
    }
  }

  static async create(cfg: DecoderConfig, ep?: EpConfig): Promise<LatentDecoder> {
    return new LatentDecoder(cfg, await openSession(cfg.onnx, ep ?? cfg.ep, 'decoder'));
  }

  /**
   * The output buffer of the last run, reused by the next run of the same size: ORT allocating and handing over a
   * fresh output per clip cost more than the decode (a 128-frame shapes clip: 22 → 5 ms per run). Taken while in
   * use, so runs that overlap never share it.
   */
  private spare?: Float32Array;

  /** the decoder's output for x, which must have the dims `want`; give it back as `spare` once read */
  private async run(x: Float32Array, dims: number[], want: number[]): Promise<Float32Array> {
    const n = want.reduce((a, b) => a * b, 1);
    const buf = this.spare?.length === n ? this.spare : new Float32Array(n);
    this.spare = undefined;
    const feeds = { [this.cfg.input]: new ortRt.Tensor('float32', x, dims) };
    try {
      await this.session.run(feeds, { [this.cfg.output]: new ortRt.Tensor('float32', buf, want) });
    } catch (e) {
      // ORT refuses an output buffer of the wrong shape or type; run without one to say what the decoder gives
      const out = await this.session.run(feeds, [this.cfg.output]).catch(() => Promise.reject(e));
      const got = fromOrtF32(out[this.cfg.output], `decoder output ${this.cfg.output}`);
      if (got.dims.length === want.length && got.dims.every((d, i) => d === want[i])) throw e;
      const rgb = got.dims[1] !== 3 ? ` (frames are RGB: 3 channels, not ${got.dims[1]})` : '';
      throw new Error(`decoder ${this.cfg.onnx}: output [${got.dims.join(',')}], expected [${want.join(',')}]${rgb}`);
    }
    return buf;
  }

  /**
   * latents [B, C, F, h, w] → per batch item, `temporal·F` frames of (spatial·w)×(spatial·h) RGB24.
   * `keepFrames` trims each clip to its first frames (when F was rounded up to the temporal patch size).
   */
  async decode(latents: Tensor<'float32'>, keepFrames?: number): Promise<Frames[]> {
    if (latents.dims.length !== 5) throw new Error(`decoder: latents must be [B,C,F,h,w], got [${latents.dims.join(',')}]`);
    const [B, C, F, h, w] = latents.dims;
    const inv = 1 / this.cfg.scale_factor;
    const scaled = new Float32Array(latents.data.length);
    for (let i = 0; i < scaled.length; i++) scaled[i] = latents.data[i] * inv;
    const T = this.cfg.temporal * F;
    const H = this.cfg.spatial * h;
    const W = this.cfg.spatial * w;
    const keep = Math.min(keepFrames ?? T, T);
    const clips: Frames[] = [];
    if (this.cfg.layout === 'video') {
      const out = await this.run(scaled, [B, C, F, h, w], [B, 3, T, H, W]);
      for (let b = 0; b < B; b++) clips.push(this.toRgb(out, b * 3 * T * H * W, T, keep, H, W));
      this.spare = out;
      return clips;
    }
    // image layout: gather [N = frames, C, h, w] per batch item and decode in chunks
    if (this.cfg.temporal !== 1) throw new Error('decoder: image layout decodes frame by frame, so temporal must be 1');
    const plane = h * w;
    for (let b = 0; b < B; b++) {
      const frames: Uint8Array[] = [];
      for (let f0 = 0; f0 < keep; f0 += this.cfg.frames_per_call) {
        const n = Math.min(this.cfg.frames_per_call, keep - f0);
        const x = new Float32Array(n * C * plane);
        for (let i = 0; i < n; i++)
          for (let c = 0; c < C; c++) {
            const src = ((b * C + c) * F + f0 + i) * plane;
            x.set(scaled.subarray(src, src + plane), (i * C + c) * plane);
          }
        const out = await this.run(x, [n, C, h, w], [n, 3, H, W]);
        for (let i = 0; i < n; i++) frames.push(this.frameToRgb(out, i * 3 * H * W, H * W, H * W, W, H));
        this.spare = out;
      }
      clips.push({ width: W, height: H, frames });
    }
    return clips;
  }

  /** [3, T, H, W] planar floats at `base` → T packed RGB24 frames */
  private toRgb(data: Float32Array, base: number, T: number, keep: number, H: number, W: number): Frames {
    const frames: Uint8Array[] = [];
    for (let t = 0; t < keep; t++) frames.push(this.frameToRgb(data, base + t * H * W, T * H * W, H * W, W, H));
    return { width: W, height: H, frames };
  }

  /** one frame: channel c's plane starts at base + c·channelStride */
  private frameToRgb(data: Float32Array, base: number, channelStride: number, n: number, W: number, H: number): Uint8Array {
    const out = new Uint8Array(W * H * 3);
    // signed: v → (v + 1)/2 = a·v + a with a = 1/2; unsigned: a = 1, b = 0
    const a = this.cfg.output_range === '-1,1' ? 0.5 : 1;
    const b = a === 1 ? 0 : 0.5;
    const r0 = base, g0 = base + channelStride, b0 = base + 2 * channelStride;
    // Pixel by pixel, so the writes are sequential. (x + 0.5) | 0 is Math.round(x) for x in [0, 255]: x = 255·v with
    // v a float32 is exact in a double, and so is x + 0.5.
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      let r = a * data[r0 + i] + b, g = a * data[g0 + i] + b, bl = a * data[b0 + i] + b;
      r = Math.min(Math.max(r, 0), 1); // NaN stays NaN and stores as 0, as before
      g = Math.min(Math.max(g, 0), 1);
      bl = Math.min(Math.max(bl, 0), 1);
      out[j] = (r * 255 + 0.5) | 0;
      out[j + 1] = (g * 255 + 0.5) | 0;
      out[j + 2] = (bl * 255 + 0.5) | 0;
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
