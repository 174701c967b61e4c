// Model inputs given on the command line, checked against the config before any model is built, so a wrong file
// gives a message naming the flag, the shape found and the shape the config expects.
import type { Tensor } from '../../shared/tensor.ts';
import type { Derived, UViTConfig } from '../model/config.ts';
import { readFloat32, readInt64, shapeStr } from './io.ts';

export interface Conditioning {
  y?: Tensor<'int64'>;
  context?: Tensor<'float32'>;
}

function expectedX(d: Derived): string {
  return d.video ? `[B,${d.C},F',${d.S},${d.S}] (F' a multiple of ${d.pt}, at most ${d.F})` : `[B,${d.C},${d.S},${d.S}]`;
}

/** x or z-init: [B,C,S,S] (2-D) or [B,C,F',S,S] (video) */
export function readLatent(flag: string, path: string, d: Derived): Tensor<'float32'> {
  const x = readFloat32(flag, path);
  const dims = x.dims;
  const rank = d.video ? 5 : 4;
  let ok = dims.length === rank && dims[0] >= 1 && dims[1] === d.C && dims[rank - 2] === d.S && dims[rank - 1] === d.S;
  if (ok && d.video) ok = dims[2] >= d.pt && dims[2] <= d.F && dims[2] % d.pt === 0;
  if (!ok) {
    throw new Error(`--${flag}: shape mismatch: ${path} has shape ${shapeStr(dims)}, the config expects ${expectedX(d)}`);
  }
  return x;
}

/** --t: [B] network times (float32; float16/64 and integer files are converted) */
export function readTimesteps(path: string, B: number): Tensor<'float32'> {
  const t = readFloat32('t', path, true);
  if (t.dims.length === 0 && t.data.length === 1) return { dtype: 'float32', dims: [B], data: new Float32Array(B).fill(t.data[0]) };
  if (t.dims.length !== 1 || t.dims[0] !== B) {
    throw new Error(`--t: shape mismatch: ${path} has shape ${shapeStr(t.dims)}, expected [${B}] (one time per sample of x)`);
  }
  return t;
}

/**
 * --y / --context checked against the model variant: y only for class models (labels in [0, num_classes)),
 * context only for text models ([B, num_clip_token, clip_dim]); `requireCond` makes the variant's input mandatory.
 */
export function readConditioning(
  cfg: UViTConfig,
  d: Derived,
  B: number,
  yPath: string | undefined,
  ctxPath: string | undefined,
  requireCond = true,
): Conditioning {
  if (yPath && ctxPath) throw new Error('give either --y (class model) or --context (text model), not both');
  if (yPath && d.variant !== 'class') {
    throw new Error(`--y given, but the config describes a ${d.variant === 'text' ? 'text-conditioned model (use --context)' : 'unconditional model (no --y/--context)'}`);
  }
  if (ctxPath && d.variant !== 'text') {
    throw new Error(`--context given, but the config describes a ${d.variant === 'class' ? 'class-conditional model (use --y)' : 'unconditional model (no --y/--context)'}`);
  }
  if (d.variant === 'class') {
    if (!yPath) {
      if (requireCond) throw new Error(`the config describes a class-conditional model (num_classes ${d.numClasses}): --y Y.npy is required`);
      return {};
    }
    const y = readInt64('y', yPath);
    if (y.dims.length !== 1 || y.dims[0] !== B) {
      throw new Error(`--y: shape mismatch: ${yPath} has shape ${shapeStr(y.dims)}, expected [${B}] (one label per sample)`);
    }
    for (const v of y.data) {
      if (v < 0n || v >= BigInt(d.numClasses)) {
        throw new Error(`--y: label ${v} is out of range [0, ${d.numClasses}) (null class = ${d.nullClass})`);
      }
    }
    return { y };
  }
  if (d.variant === 'text') {
    if (!ctxPath) {
      if (requireCond) throw new Error(`the config describes a text-conditioned model: --context CTX.npy [B,${cfg.num_clip_token},${cfg.clip_dim}] is required`);
      return {};
    }
    const context = readFloat32('context', ctxPath);
    const want = [B, cfg.num_clip_token!, cfg.clip_dim!];
    if (context.dims.length !== 3 || context.dims.some((v, i) => v !== want[i])) {
      throw new Error(`--context: shape mismatch: ${ctxPath} has shape ${shapeStr(context.dims)}, expected ${shapeStr(want)}`);
    }
    return { context };
  }
  return {};
}
