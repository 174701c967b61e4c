// Helpers for bench/engine.ts: the ORT MatMul peak, random weights, and matmul FLOPs of a forward.
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../gpu-backend/onnx/graph.ts';
import { DataType } from '../gpu-backend/onnx/onnx.ts';
import { derive, type UViTConfig } from '../gpu-backend/model/config.ts';
import { expectedParams } from '../gpu-backend/model/weights.ts';
import { sessionOptions } from '../gpu-backend/engine/session.ts';

/** Deterministic pseudo-random float32 fill in [-a, a) (xorshift32); enough for timing. */
export function randomFill(n: number, seed: number, a = 0.05): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * a;
  }
  return out;
}

export function randomWeights(cfg: UViTConfig, seed = 1): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  let k = seed;
  for (const [name, shape] of expectedParams(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const w = randomFill(n, k++ * 7919);
    if (/norm\d?\.weight$/.test(name)) w.fill(1);
    m.set(name, w);
  }
  return m;
}

/** Matmul FLOPs (2 per multiply-add) of one forward per sample over T tokens: the MFU numerator. */
export function forwardMatmulFlops(cfg: UViTConfig, frames?: number): number {
  const d = derive(cfg);
  const L = d.tokensFor(frames);
  const T = d.extras + L;
  const { D, hidden, n } = d;
  const mm = (m: number, k: number, nn: number) => 2 * m * k * nn;
  const block = mm(T, D, 3 * D) + 2 * mm(T, D, T) + mm(T, D, D) + mm(T, D, hidden) + mm(T, hidden, D);
  let f = (2 * n + 1) * block + n * mm(T, 2 * D, D);
  f += mm(L, d.patchDim, D) + mm(T, D, d.patchDim);
  if (d.variant === 'text') f += mm(d.extras - 1, cfg.clip_dim!, D);
  if (cfg.conv) f += 2 * d.C * d.C * (d.video ? 27 : 9) * (L / d.tokensPerFrame) * d.pt * d.S * d.S;
  return f;
}

export interface Timing {
  /** median wall ms */
  wallMs: number;
  /** best (minimum) process CPU ms per call: robust to other processes on a shared machine when threads = 1 */
  cpuMs: number;
}

/** Times fn (after one warm-up call): median wall time and minimum CPU time over reps. */
export async function timeIt(fn: () => Promise<unknown>, minMs = 1000, minReps = 3): Promise<Timing> {
  await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  const t0 = performance.now();
  while (wall.length < minReps || performance.now() - t0 < minMs) {
    const c0 = process.cpuUsage();
    const s = performance.now();
    await fn();
    wall.push(performance.now() - s);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  wall.sort((a, b) => a - b);
  return { wallMs: wall[Math.floor(wall.length / 2)], cpuMs: Math.min(...cpu) };
}

export type MatmulShape = [number, number, number];
export const PRESCRIBED_SHAPE: MatmulShape = [2048, 1024, 4096];
/** more shapes for the "best MatMul" peak: some ORT/MLAS shapes run faster than the prescribed one (cache fit) */
export const EXTRA_SHAPES: MatmulShape[] = [[1024, 1024, 1024], [1024, 256, 1024], [2048, 512, 2048]];

/** A session computing one MatMul [M,K]x[K,N] with the weight as an initializer, like the model's linears. */
export async function matmulSession(threads: number, [M, K, N]: MatmulShape, spin = true) {
  const b = new GraphBuilder('matmul_peak');
  const x = b.input('x', DataType.FLOAT, [M, K]);
  const w = b.f32('w', [K, N], randomFill(K * N, 3));
  b.output(b.op('MatMul', [x, w]), 'y', DataType.FLOAT, [M, N]);
  const session = await ort.InferenceSession.create(b.encode(), sessionOptions({ threads, spin }));
  const feeds = { x: new ort.Tensor('float32', randomFill(M * K, 5), [M, K]) };
  return { flops: 2 * M * K * N, run: () => session.run(feeds), release: () => session.release() };
}
