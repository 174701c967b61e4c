// File inputs of the CLI: existence checks with the flag named, .npy tensors converted to the dtype the model takes.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Tensor } from '../../shared/tensor.ts';
import { loadConfig, type UViTConfig } from '../model/config.ts';
import { readNpy } from '../model/npy.ts';

/** Throws "--flag: file not found: path" (or "is a directory") before anything is loaded. */
export function requireFile(flag: string, path: string): string {
  if (!existsSync(path)) throw new Error(`--${flag}: file not found: ${path}`);
  if (statSync(path).isDirectory()) throw new Error(`--${flag}: ${path} is a directory, expected a file`);
  return path;
}

export function readConfigFlag(path: string): UViTConfig {
  requireFile('config', path);
  return loadConfig(path);
}

function readTensor(flag: string, path: string): Tensor {
  requireFile(flag, path);
  try {
    return readNpy(path);
  } catch (e) {
    throw new Error(`--${flag}: ${(e as Error).message}`);
  }
}

/** float32 tensor (float16/float64 files are converted; integers are rejected unless allowInt) */
export function readFloat32(flag: string, path: string, allowInt = false): Tensor<'float32'> {
  const t = readTensor(flag, path);
  if (t.dtype === 'float32') return t as Tensor<'float32'>;
  if (t.dtype === 'float16') {
    const src = t.data as Uint16Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
    return { dtype: 'float32', dims: t.dims, data: out };
  }
  if (allowInt && (t.dtype === 'int64' || t.dtype === 'int32')) {
    return { dtype: 'float32', dims: t.dims, data: Float32Array.from(t.data as ArrayLike<number | bigint>, Number) };
  }
  throw new Error(`--${flag}: ${path} has dtype ${t.dtype}, expected float32`);
}

/** int64 labels (int32 / uint8 files are widened) */
export function readInt64(flag: string, path: string): Tensor<'int64'> {
  const t = readTensor(flag, path);
  if (t.dtype === 'int64') return t as Tensor<'int64'>;
  if (t.dtype === 'int32' || t.dtype === 'uint8') {
    return { dtype: 'int64', dims: t.dims, data: BigInt64Array.from(t.data as ArrayLike<number>, (v) => BigInt(v)) };
  }
  throw new Error(`--${flag}: ${path} has dtype ${t.dtype}, expected int64 class labels`);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export const shapeStr = (d: readonly number[]) => `[${d.join(',')}]`;

/** Fails early (before any compute) when the directory an output goes to does not exist. */
export function requireOutputDir(flag: string, path: string): string {
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--${flag}: directory ${dir} does not exist (for ${path})`);
  return path;
}
