// ONNX Runtime session options and creation for segment models (CPU, or CUDA on GPU hosts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface EngineSessionOptions {
  /** intra-op threads (default: ORT's choice, all cores) */
  threads?: number;
  ep?: ExecutionProvider;
  /** CUDA device ordinal (ep 'cuda') */
  deviceId?: number;
  /** let idle intra-op workers spin (ORT default, fastest on a dedicated host); false helps on oversubscribed CPUs */
  spin?: boolean;
  /** ORT's CPU memory arena (default on). Each session keeps its own arena, sized by its largest activations, so a
   *  stage holding many sessions turns it off: measured on a D512 depth-12 model split in 2 (7 sessions per stage),
   *  stage RSS fell from 389 to 288 MB with the same compute time. */
  memArena?: boolean;
}

export function sessionOptions(o: EngineSessionOptions = {}): ort.InferenceSession.SessionOptions {
  const ep = o.ep ?? 'cpu';
  if (ep !== 'cpu' && ep !== 'cuda') throw new Error(`execution provider must be 'cpu' or 'cuda', got '${String(ep)}'`);
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1)) {
    throw new Error(`threads must be a positive integer, got ${o.threads}`);
  }
  return {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(o.memArena === false ? { enableCpuMemArena: false } : {}),
    ...(o.threads !== undefined ? { intraOpNumThreads: o.threads } : {}),
    executionProviders: ep === 'cuda' ? [{ name: 'cuda', deviceId: o.deviceId ?? 0 }] : ['cpu'],
    ...(o.spin === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
}

/** Whether this onnxruntime-node install carries the CUDA execution provider library. */
export function cudaProviderInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(dir, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/** Creates a session from model bytes or a model file path (a path is needed when the model has external data). */
export async function createSession(model: Uint8Array | string, o: EngineSessionOptions = {}): Promise<ort.InferenceSession> {
  const opts = sessionOptions(o);
  if ((o.ep ?? 'cpu') === 'cuda' && !cudaProviderInstalled()) {
    throw new Error('execution provider cuda requested, but this onnxruntime-node install has no CUDA provider ' +
      '(libonnxruntime_providers_cuda.so is absent: it was installed with onnxruntime-node-install=skip or on a ' +
      'platform without CUDA); use ep cpu, or on a CUDA 12 host run `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`');
  }
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, opts)
      : await ort.InferenceSession.create(model, opts);
  } catch (e) {
    throw new Error(`cannot create ONNX Runtime session (ep ${o.ep ?? 'cpu'}): ${(e as Error).message}`);
  }
}
