// The latent decoder on its own worker thread. onnxruntime-node runs a session synchronously on the calling thread, so
// a decode on the driver's thread would stop it, for the whole decode, from reading eps and sending the next inputs
// of the other clips in flight: the stages would run dry. Here the driver thread only posts the latents and gets the
// frames back (their buffers are moved, not copied). Same LatentDecoder, same session options: the same frames.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Tensor } from '../../shared/tensor.ts';
import { type DecoderConfig, type Frames, LatentDecoder } from './decoder.ts';
import type { EpConfig } from './ort.ts';

/** marks this module's own worker (the module is also imported on the driver thread) */
const ROLE = 'uvit-decoder-thread';

type Request = { id: number; latents: Tensor<'float32'>; keepFrames?: number } | { id: number; release: true };
type Reply = { id: number; clips?: Frames[]; error?: string };

export class DecoderThread {
  readonly cfg: DecoderConfig;
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (c: Frames[]) => void; reject: (e: Error) => void }>();
  private next = 1;
  private broken: Error | null = null;

  private constructor(cfg: DecoderConfig, worker: Worker) {
    this.cfg = cfg;
    this.worker = worker;
    worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (!this.waiting.size) worker.unref();
      if (r.error !== undefined) w.reject(new Error(r.error));
      else w.resolve(r.clips ?? []);
    });
    const fail = (e: Error) => {
      this.broken ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on('error', (e) => fail(new Error(`decoder thread failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`decoder thread exited (code ${code})`)));
  }

  /** Starts the thread and opens the decoder's session there; rejects with the session's error. */
  static async create(cfg: DecoderConfig, ep?: EpConfig): Promise<DecoderThread> {
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: ROLE, cfg, ep } });
    const t = new DecoderThread(cfg, worker);
    try {
      // the thread answers request 0 once its session is open
      await new Promise<Frames[]>((resolve, reject) => t.waiting.set(0, { resolve, reject }));
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    return t;
  }

  private call(req: Request, transfer: ArrayBuffer[] = []): Promise<Frames[]> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<Frames[]>((resolve, reject) => {
      this.waiting.set(req.id, { resolve, reject });
      // referenced only while a request is out: an idle decoder thread never keeps the process alive
      this.worker.ref();
      this.worker.postMessage(req, transfer);
    });
  }

  /** LatentDecoder.decode on the thread; the latents are copied, the caller keeps its tensor */
  decode(latents: Tensor<'float32'>, keepFrames?: number): Promise<Frames[]> {
    const data = new Float32Array(latents.data);
    return this.call({ id: this.next++, latents: { dtype: 'float32', dims: [...latents.dims], data }, keepFrames }, [data.buffer]);
  }

  async release(): Promise<void> {
    if (!this.broken) await this.call({ id: this.next++, release: true }).catch(() => {});
    await this.worker.terminate();
  }
}

async function serveThread(port: NonNullable<typeof parentPort>, cfg: DecoderConfig, ep?: EpConfig): Promise<void> {
  let decoder: LatentDecoder;
  try {
    decoder = await LatentDecoder.create(cfg, ep);
  } catch (e) {
    port.postMessage({ id: 0, error: (e as Error).message } satisfies Reply);
    return;
  }
  port.postMessage({ id: 0, clips: [] } satisfies Reply);
  port.on('message', async (req: Request) => {
    if ('release' in req) {
      await decoder.release();
      port.postMessage({ id: req.id, clips: [] } satisfies Reply);
      port.close();
      return;
    }
    try {
      const clips = await decoder.decode(req.latents, req.keepFrames);
      port.postMessage({ id: req.id, clips } satisfies Reply, clips.flatMap((c) => c.frames.map((f) => f.buffer as ArrayBuffer)));
    } catch (e) {
      port.postMessage({ id: req.id, error: (e as Error).message } satisfies Reply);
    }
  });
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === ROLE) {
  const { cfg, ep } = workerData as { cfg: DecoderConfig; ep?: EpConfig };
  void serveThread(parentPort, cfg, ep);
}
