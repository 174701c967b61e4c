// onnxruntime session options for the driver's own models (text encoder, latent decoder).
// `ep` chooses the execution provider: 'cpu' (the only one on this machine) or 'cuda' with a device id (GPU hosts,
// with onnxruntime-node's CUDA 12 binaries installed; see README "Backend configuration / GPU hosts").
import * as ort from 'onnxruntime-node';
import * as z from 'zod';
import type { Tensor } from '../../shared/tensor.ts';
import { createSession } from '../engine/session.ts';

export const EpConfigSchema = z
  .object({
    ep: z.enum(['cpu', 'cuda']).default('cpu'),
    device_id: z.number().int().min(0).default(0),
    threads: z.number().int().min(1).max(256).optional(),
  })
  .strict();
export type EpConfig = z.infer<typeof EpConfigSchema>;

/** A session through the engine's createSession (same CPU/CUDA handling and CUDA-install check as the stages). */
export async function openSession(path: string | Uint8Array, ep: EpConfig | undefined, what: string): Promise<ort.InferenceSession> {
  const e = ep ?? { ep: 'cpu', device_id: 0 };
  try {
    return await createSession(path, { ep: e.ep, deviceId: e.device_id, threads: e.threads });
  } catch (err) {
    const where = typeof path === 'string' ? path : `<${path.length} bytes>`;
    throw new Error(`${what}: cannot load ONNX model ${where}: ${(err as Error).message}`);
  }
}

export function fromOrtF32(t: ort.Tensor, what: string): Tensor<'float32'> {
  if (t.type !== 'float32') throw new Error(`${what}: expected float32 output, got ${t.type}`);
  return { dtype: 'float32', dims: [...t.dims], data: t.data as Float32Array };
}
