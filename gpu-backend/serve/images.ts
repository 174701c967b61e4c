// A backend group serving a catalogue image model: the image driver around a forward (in-process engine or stage
// pipeline), with the autoencoder decoder (latent models) and the CLIP text encoder (text models) built in memory from
// the checkpoint files; and what the worker runs for a leased image job: check it, make its PNGs.
import type { Tensor } from '../../shared/tensor.ts';
import { imageArtifactName, type JobSpec } from '../../shared/lease.ts';
import type { Forward, ProgressEvent } from '../driver/driver.ts';
import { type ContextEncoder, ImageDriver } from '../driver/image.ts';
import { ClipBpeTokenizer } from '../driver/text/clip.ts';
import { Autoencoder } from '../engine/autoencoder.ts';
import { ClipTextEncoder } from '../engine/clipText.ts';
import type { ImageModel } from './catalogue.ts';
import { JobError, checkSize, type ImageJobRunner, type ResultFile } from './worker.ts';

export interface AssembledImages {
  driver: ImageDriver;
  jobs: ImageJobRunner;
  /** releases the autoencoder and the text encoder (the forward's owner releases the network) */
  release(): Promise<void>;
}

export async function assembleImages(m: ImageModel, forward: Forward): Promise<AssembledImages> {
  const ep = { threads: m.engine.threads, ep: m.engine.ep, deviceId: m.engine.device_id };
  const opened: { release(): Promise<void> }[] = [];
  try {
    let decode: ((z: Tensor<'float32'>) => Promise<Tensor<'float32'>>) | undefined;
    if (m.autoencoder) {
      const ae = await Autoencoder.open(m.autoencoder.path, { ...ep, config: m.autoencoder.config, parts: ['decoder'] });
      opened.push(ae);
      decode = (z) => ae.decode(z);
    }
    let textEncoder: ContextEncoder | undefined;
    if (m.clip) {
      const clip = await ClipTextEncoder.open(m.clip.weights, m.clip.config, ep);
      opened.push(clip);
      // the network's context length: 77 tokens for the official models (FrozenCLIPEmbedder's max_length)
      const n = m.uvit.num_clip_token!;
      const tok = ClipBpeTokenizer.fromFiles(m.clip.vocab, m.clip.merges, n);
      textEncoder = {
        encode: (prompts) => {
          const ids = new BigInt64Array(prompts.length * n);
          prompts.forEach((p, b) => ids.set(tok.encode(p).map(BigInt), b * n));
          return clip.encode({ dtype: 'int64', dims: [prompts.length, n], data: ids });
        },
      };
    }
    const driver = new ImageDriver({ model: m.uvit, forward, solver: m.solver, decode, resolution: m.resolution, textEncoder });
    return {
      driver,
      jobs: imageJobs(driver, m),
      async release() {
        for (const o of opened) await o.release();
      },
    };
  } catch (e) {
    for (const o of opened) await o.release();
    throw e;
  }
}

/** The worker's side of image jobs: refuse what the model cannot make (not retryable), make the PNGs of the rest. */
export function imageJobs(driver: ImageDriver, m: Pick<ImageModel, 'max_images' | 'cfg_mode'>): ImageJobRunner {
  const check = (job: JobSpec) => {
    checkSize(job, driver.size);
    const n = job.n ?? 1;
    if (n > m.max_images) throw new JobError(`n ${n} is more than the ${m.max_images} images this group makes per job`, false, 'invalid_parameter');
    const why = driver.problem({ classLabel: job.class_label, prompt: job.prompt, guidance: job.guidance });
    if (why) throw new JobError(why, false, 'invalid_parameter');
  };
  return {
    check,
    async run(job, o: { jobId: string; signal: AbortSignal; onProgress: (e: ProgressEvent) => void; stages: number }): Promise<ResultFile[]> {
      const r = await driver.generate({
        jobId: o.jobId, n: job.n ?? 1, seed: job.seed, steps: job.steps, guidance: job.guidance,
        classLabel: job.class_label, prompt: job.prompt,
        // on a stage pipeline, cond and uncond travel as two micro-batches
        cfgMode: o.stages > 1 ? 'micro' : m.cfg_mode,
        signal: o.signal, onProgress: o.onProgress,
      });
      return r.pngs.map((bytes, i) => ({ name: imageArtifactName(i), bytes, contentType: 'image/png' }));
    },
  };
}
