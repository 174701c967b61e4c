// Seeded random U-ViT weights with the official names. THESE ARE RANDOM DEMO WEIGHTS: they exercise the engine
// and the pipeline exactly like real ones (same names, shapes and numerics) but generate noise, not pictures.
//
// Official init (libs/uvit.py): trunc_normal(std .02, absolute bounds ±2) on every nn.Linear weight and on
// pos_embed, zero Linear biases, LayerNorm weight 1 / bias 0; modules it does not touch keep PyTorch defaults:
// Conv (patch_embed, final_layer) weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), nn.Embedding (label_emb)
// ~ N(0, 1). Then, by default, every parameter += N(0, perturb^2) with perturb = 0.05 (like the golden case), so that
// zero/one-initialised biases and LayerNorms are non-trivial. perturb = 0 gives the plain official init.
//
// Each tensor has its own random stream derived from (seed, name), so any subset (a stage's shard) can be generated
// alone and gives the same values as the whole model.
import { float32, type Tensor } from '../../shared/tensor.ts';
import { derive, type UViTConfig } from './config.ts';
import { SafetensorsWriter, type WriteDType } from './safetensors.ts';
import { expectedParams } from './weights.ts';
import { splitmix32, Xoshiro128ss } from './xoshiro.ts';

export interface InitOptions {
  /** std of the N(0, perturb^2) noise added to every parameter (default 0.05; 0 = plain official init) */
  perturb?: number;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The four xoshiro state words for (seed, stream): SplitMix32 seeded from the seed's two halves and the stream's hash. */
function seedState(seed: number, stream: string): [number, number, number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
  let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32), 0x27d4eb2d) ^ fnv1a(stream);
  const next = () => {
    const r = splitmix32(x);
    x = (x + 0x9e3779b9) | 0;
    return r;
  };
  return [next(), next(), next(), next()];
}

/** xoshiro128** uniform generator plus Marsaglia-polar normals, deterministic per (seed, stream name) */
export class Rng extends Xoshiro128ss {
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number, stream = '') {
    super(...seedState(seed, stream));
  }

  /** uniform in [0, 1) with 53 random bits */
  uniform(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }

  /** standard normal (Marsaglia polar method on 32-bit uniforms in (-1, 1)) */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    for (;;) {
      const u = this.nextU32() * 4.656612873077393e-10 - 1; // 2^-31
      const v = this.nextU32() * 4.656612873077393e-10 - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        this.spare = v * m;
        this.hasSpare = true;
        return u * m;
      }
    }
  }
}

type Init =
  | { kind: 'trunc_normal'; std: number }
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number };

/** the official initialiser of one parameter */
export function officialInit(cfg: UViTConfig, name: string): Init {
  const d = derive(cfg);
  if (name === 'pos_embed') return { kind: 'trunc_normal', std: 0.02 };
  if (name === 'label_emb.weight') return { kind: 'normal', std: 1 };
  if (name.startsWith('patch_embed.proj.')) return { kind: 'uniform', bound: 1 / Math.sqrt(d.C * d.pt * d.p * d.p) };
  if (name.startsWith('final_layer.')) return { kind: 'uniform', bound: 1 / Math.sqrt(d.C * (d.video ? 27 : 9)) };
  if (/(^|\.)norm[12]?\.(weight|bias)$/.test(name)) return name.endsWith('.weight') ? { kind: 'ones' } : { kind: 'zeros' };
  // every other parameter belongs to an nn.Linear
  return name.endsWith('.weight') ? { kind: 'trunc_normal', std: 0.02 } : { kind: 'zeros' };
}

/** one parameter's values (deterministic in seed and name, independent of which other tensors are generated) */
export function initTensor(cfg: UViTConfig, seed: number, name: string, opts: InitOptions = {}): Float32Array {
  const shape = expectedParams(cfg).get(name);
  if (!shape) throw new Error(`initTensor: "${name}" is not a parameter of this config`);
  return initValues(cfg, seed, name, shape, opts);
}

function initValues(cfg: UViTConfig, seed: number, name: string, shape: number[], opts: InitOptions): Float32Array {
  const perturb = opts.perturb ?? 0.05;
  if (!(perturb >= 0) || !Number.isFinite(perturb)) throw new Error(`perturb must be a finite number >= 0, got ${perturb}`);
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  const rng = new Rng(seed, name);
  const init = officialInit(cfg, name);
  switch (init.kind) {
    case 'trunc_normal':
      for (let i = 0; i < count; i++) {
        // timm trunc_normal_(std=.02) truncates at the absolute bounds [-2, 2]
        let v: number;
        do v = init.std * rng.normal(); while (v < -2 || v > 2);
        out[i] = v;
      }
      break;
    case 'normal':
      for (let i = 0; i < count; i++) out[i] = init.std * rng.normal();
      break;
    case 'uniform':
      for (let i = 0; i < count; i++) out[i] = (2 * rng.uniform() - 1) * init.bound;
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'zeros':
      break;
  }
  // perturbation drawn from a separate stream so the init values do not depend on it
  if (perturb > 0) {
    const rp = new Rng(seed, `${name}#perturb`);
    for (let i = 0; i < count; i++) out[i] += perturb * rp.normal();
  }
  return out;
}

/** all (or the named) parameters as float32 tensors */
export function initWeights(cfg: UViTConfig, seed: number, opts: InitOptions & { names?: string[] } = {}):
  Map<string, Tensor<'float32'>> {
  const exp = expectedParams(cfg);
  const out = new Map<string, Tensor<'float32'>>();
  for (const name of opts.names ?? exp.keys()) {
    const shape = exp.get(name);
    if (!shape) throw new Error(`initWeights: "${name}" is not a parameter of this config`);
    out.set(name, float32([...shape], initValues(cfg, seed, name, shape, opts)));
  }
  return out;
}

/**
 * Write seeded random weights to a safetensors file one tensor at a time (peak memory ≈ the largest tensor),
 * so a ~500M-parameter U-ViT-H config (2 GB F32) works within a few hundred MB.
 */
export function initWeightsToFile(cfg: UViTConfig, seed: number, path: string,
  opts: InitOptions & { dtype?: WriteDType; onProgress?: (done: number, total: number) => void } = {}): void {
  const exp = expectedParams(cfg);
  const dtype = opts.dtype ?? 'F32';
  const specs = new Map<string, { dtype: WriteDType; shape: number[] }>();
  for (const [k, v] of exp) specs.set(k, { dtype, shape: v });
  const w = new SafetensorsWriter(path, specs, {
    generator: 'uvit init-weights (random demo weights, not trained)',
    seed: String(seed),
    perturb: String(opts.perturb ?? 0.05),
  });
  let done = 0;
  try {
    for (const [k, shape] of exp) {
      w.write(k, initValues(cfg, seed, k, shape, opts));
      opts.onProgress?.(++done, exp.size);
    }
  } catch (e) {
    w.abort();
    throw e;
  }
  w.close();
}
