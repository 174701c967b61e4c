// The KL autoencoder of the official libs/autoencoder.py (Stable Diffusion's autoencoder_kl.pth) as ONNX: the decoder
// of FrozenAutoencoderKL.decode(z) (z / scale_factor -> post_quant_conv -> Decoder) and the encoder of
// encode_moments(x) (Encoder -> quant_conv). One structural walk of the official modules serves both for listing the
// state_dict (names and shapes, to check a weights file) and for building the graph, so the two cannot disagree.
import { readFileSync } from 'node:fs';
import { f, GraphBuilder } from '../../onnx/graph.ts';
import { DataType } from '../../onnx/onnx.ts';

export interface AutoencoderConfig {
  ch: number;
  ch_mult: number[];
  num_res_blocks: number;
  /** spatial sizes (of the encoder's input scale) whose levels carry an attention block after each res block */
  attn_resolutions: number[];
  resolution: number;
  in_channels: number;
  out_ch: number;
  z_channels: number;
  embed_dim: number;
  scale_factor: number;
}

/** libs/autoencoder.get_model: the configuration of autoencoder_kl.pth */
export const OFFICIAL_AUTOENCODER: AutoencoderConfig = {
  ch: 128,
  ch_mult: [1, 2, 4, 4],
  num_res_blocks: 2,
  attn_resolutions: [],
  resolution: 256,
  in_channels: 3,
  out_ch: 3,
  z_channels: 4,
  embed_dim: 4,
  scale_factor: 0.18215,
};

/**
 * FrozenAutoencoderKL's constructor arguments as JSON: {"ddconfig": {...}, "embed_dim": N, "scale_factor": S}
 * (what tests/fixtures/autoencoder/make.py writes).
 */
export function readAutoencoderConfig(path: string): AutoencoderConfig {
  const j = JSON.parse(readFileSync(path, 'utf8')) as { ddconfig?: Record<string, unknown>; embed_dim?: unknown; scale_factor?: unknown };
  const dd = j.ddconfig ?? {};
  const c = { ...dd, embed_dim: j.embed_dim, scale_factor: j.scale_factor } as Record<string, unknown>;
  for (const k of ['ch', 'num_res_blocks', 'resolution', 'in_channels', 'out_ch', 'z_channels', 'embed_dim', 'scale_factor']) {
    if (typeof c[k] !== 'number' || !(c[k] > 0)) throw new Error(`autoencoder config ${path}: ${k} must be a positive number, got ${JSON.stringify(c[k])}`);
  }
  for (const k of ['ch_mult', 'attn_resolutions']) {
    if (!Array.isArray(c[k]) || !(c[k] as unknown[]).every((x) => Number.isInteger(x) && (x as number) > 0)) {
      throw new Error(`autoencoder config ${path}: ${k} must be a list of positive integers`);
    }
  }
  if (dd.double_z === false) throw new Error(`autoencoder config ${path}: double_z must be true (FrozenAutoencoderKL asserts it)`);
  return c as unknown as AutoencoderConfig;
}

/** nn.GroupNorm(32, C, eps=1e-6) everywhere (Normalize) */
const GROUPS = 32;
const GN_EPS = 1e-6;

/** What the walk does at each official module; T is a value (a graph tensor name, or nothing when listing). */
interface Visitor<T> {
  /** Conv2d k×k, padding k//2, stride 1; `down`: the Downsample conv (right/bottom zero pad by 1, stride 2, k 3) */
  conv(x: T, name: string, cin: number, cout: number, k: 1 | 3, down?: boolean): T;
  norm(x: T, name: string, c: number): T;
  silu(x: T): T;
  add(a: T, b: T): T;
  /** AttnBlock's core: softmax over keys of q·k / sqrt(c), applied to v */
  attend(q: T, k: T, v: T, c: number): T;
  /** nearest-neighbour ×2 (Upsample) */
  upsample(x: T): T;
  scale(x: T, s: number): T;
}

function resnetBlock<T>(v: Visitor<T>, x: T, name: string, cin: number, cout: number): T {
  let h = v.conv(v.silu(v.norm(x, `${name}.norm1`, cin)), `${name}.conv1`, cin, cout, 3);
  h = v.conv(v.silu(v.norm(h, `${name}.norm2`, cout)), `${name}.conv2`, cout, cout, 3);
  const skip = cin !== cout ? v.conv(x, `${name}.nin_shortcut`, cin, cout, 1) : x;
  return v.add(skip, h);
}

function attnBlock<T>(v: Visitor<T>, x: T, name: string, c: number): T {
  const h = v.norm(x, `${name}.norm`, c);
  const o = v.attend(v.conv(h, `${name}.q`, c, c, 1), v.conv(h, `${name}.k`, c, c, 1), v.conv(h, `${name}.v`, c, c, 1), c);
  return v.add(x, v.conv(o, `${name}.proj_out`, c, c, 1));
}

function mid<T>(v: Visitor<T>, h: T, p: string, c: number): T {
  h = resnetBlock(v, h, `${p}.mid.block_1`, c, c);
  h = attnBlock(v, h, `${p}.mid.attn_1`, c);
  return resnetBlock(v, h, `${p}.mid.block_2`, c, c);
}

function checkConfig(c: AutoencoderConfig): void {
  const chans = [c.ch, ...c.ch_mult.map((m) => c.ch * m)];
  if (c.ch_mult.length < 1 || chans.some((x) => !Number.isInteger(x) || x < 1 || x % GROUPS !== 0)) {
    throw new Error(`autoencoder config: every channel count ch*ch_mult (${chans.join(', ')}) must be a positive multiple of ${GROUPS} (GroupNorm(32))`);
  }
}

/** Encoder.forward then quant_conv: image [B, in_channels, H, W] -> moments [B, 2 embed_dim, H/2^(L-1), W/2^(L-1)] */
function encoder<T>(v: Visitor<T>, c: AutoencoderConfig, x: T): T {
  checkConfig(c);
  const L = c.ch_mult.length;
  const inMult = [1, ...c.ch_mult];
  let h = v.conv(x, 'encoder.conv_in', c.in_channels, c.ch, 3);
  let res = c.resolution;
  let cin = c.ch;
  for (let i = 0; i < L; i++) {
    cin = c.ch * inMult[i];
    const cout = c.ch * c.ch_mult[i];
    for (let j = 0; j < c.num_res_blocks; j++) {
      h = resnetBlock(v, h, `encoder.down.${i}.block.${j}`, cin, cout);
      cin = cout;
      if (c.attn_resolutions.includes(res)) h = attnBlock(v, h, `encoder.down.${i}.attn.${j}`, cin);
    }
    if (i !== L - 1) {
      h = v.conv(h, `encoder.down.${i}.downsample.conv`, cin, cin, 3, true);
      res = Math.floor(res / 2);
    }
  }
  h = mid(v, h, 'encoder', cin);
  h = v.conv(v.silu(v.norm(h, 'encoder.norm_out', cin)), 'encoder.conv_out', cin, 2 * c.z_channels, 3);
  return v.conv(h, 'quant_conv', 2 * c.z_channels, 2 * c.embed_dim, 1);
}

/** decode: z / scale_factor, post_quant_conv, Decoder.forward: [B, embed_dim, h, w] -> [B, out_ch, h 2^(L-1), w 2^(L-1)] */
function decoder<T>(v: Visitor<T>, c: AutoencoderConfig, z: T): T {
  checkConfig(c);
  const L = c.ch_mult.length;
  let h = v.conv(v.scale(z, 1 / c.scale_factor), 'post_quant_conv', c.embed_dim, c.z_channels, 1);
  let cin = c.ch * c.ch_mult[L - 1];
  let res = Math.floor(c.resolution / 2 ** (L - 1));
  h = v.conv(h, 'decoder.conv_in', c.z_channels, cin, 3);
  h = mid(v, h, 'decoder', cin);
  for (let i = L - 1; i >= 0; i--) {
    const cout = c.ch * c.ch_mult[i];
    for (let j = 0; j <= c.num_res_blocks; j++) {
      h = resnetBlock(v, h, `decoder.up.${i}.block.${j}`, cin, cout);
      cin = cout;
      if (c.attn_resolutions.includes(res)) h = attnBlock(v, h, `decoder.up.${i}.attn.${j}`, cin);
    }
    if (i !== 0) {
      h = v.conv(v.upsample(h), `decoder.up.${i}.upsample.conv`, cin, cin, 3);
      res *= 2;
    }
  }
  return v.conv(v.silu(v.norm(h, 'decoder.norm_out', cin)), 'decoder.conv_out', cin, c.out_ch, 3);
}

/** Every state_dict entry FrozenAutoencoderKL has for this config (name -> shape). */
export function autoencoderParams(c: AutoencoderConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const lister: Visitor<null> = {
    conv(_x, name, cin, cout, k) {
      out.set(`${name}.weight`, [cout, cin, k, k]);
      out.set(`${name}.bias`, [cout]);
      return null;
    },
    norm(_x, name, ch) {
      out.set(`${name}.weight`, [ch]);
      out.set(`${name}.bias`, [ch]);
      return null;
    },
    silu: () => null,
    add: () => null,
    attend: () => null,
    upsample: () => null,
    scale: () => null,
  };
  encoder(lister, c, null);
  decoder(lister, c, null);
  return out;
}

export type AutoencoderPart = 'decoder' | 'encoder';

/**
 * ONNX model of one part. Inputs/outputs: decoder z [B, embed_dim, h, w] -> x [B, out_ch, H, W];
 * encoder x [B, in_channels, H, W] -> moments [B, 2 embed_dim, h, w]. Batch and spatial sizes are dynamic.
 */
export function buildAutoencoder(c: AutoencoderConfig, part: AutoencoderPart, weight: (name: string) => Float32Array): Uint8Array {
  const b = new GraphBuilder(`autoencoder_kl_${part}`, 17);
  const shapes = autoencoderParams(c);
  const w = (name: string) => {
    const shape = shapes.get(name)!;
    const data = weight(name);
    const n = shape.reduce((a, d) => a * d, 1);
    if (data.length !== n) throw new Error(`autoencoder weight "${name}" has ${data.length} elements, expected [${shape}]`);
    return b.f32(name, shape, data);
  };
  const ones = b.f32('gn_ones', [GROUPS], new Float32Array(GROUPS).fill(1));
  const zeros = b.f32('gn_zeros', [GROUPS], new Float32Array(GROUPS));
  const groups = b.i64([0, GROUPS, -1]);
  const perChannel = (name: string, ch: number) => b.op('Reshape', [w(name), b.i64([ch, 1, 1])]);
  const graph: Visitor<string> = {
    conv(x, name, _cin, _cout, k, down) {
      const pads = down ? [0, 0, 1, 1] : k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0];
      return b.op('Conv', [x, w(`${name}.weight`), w(`${name}.bias`)], { kernel_shape: [k, k], pads, strides: down ? [2, 2] : [1, 1] });
    },
    norm(x, name, ch) {
      // GroupNorm as InstanceNormalization over [B, groups, C/groups·H·W], then the per-channel affine
      const g = b.op('InstanceNormalization', [b.op('Reshape', [x, groups]), ones, zeros], { epsilon: f(GN_EPS) });
      const back = b.op('Reshape', [g, b.op('Shape', [x])]);
      return b.op('Add', [b.op('Mul', [back, perChannel(`${name}.weight`, ch)]), perChannel(`${name}.bias`, ch)]);
    },
    silu: (x) => b.op('Mul', [x, b.op('Sigmoid', [x])]),
    add: (x, y) => b.op('Add', [x, y]),
    attend(q, k, v, ch) {
      const flat = b.i64([0, ch, -1]);
      const qT = b.op('Transpose', [b.op('Reshape', [q, flat])], { perm: [0, 2, 1] }); // [B, hw, c]
      const scores = b.op('Mul', [b.op('MatMul', [qT, b.op('Reshape', [k, flat])]), b.scalar(ch ** -0.5)]); // [B, hw_q, hw_k]
      const attn = b.op('Softmax', [scores], { axis: -1 });
      const o = b.op('MatMul', [b.op('Reshape', [v, flat]), b.op('Transpose', [attn], { perm: [0, 2, 1] })]); // [B, c, hw_q]
      return b.op('Reshape', [o, b.op('Shape', [q])]);
    },
    upsample: (x) => b.op('Resize', [x, '', b.f32('up_scales', [4], Float32Array.of(1, 1, 2, 2))],
      { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }),
    scale: (x, s) => b.op('Mul', [x, b.scalar(s)]),
  };
  const F = DataType.FLOAT;
  if (part === 'decoder') {
    const z = b.input('z', F, ['B', c.embed_dim, 'h', 'w']);
    b.output(decoder(graph, c, z), 'x', F, ['B', c.out_ch, 'H', 'W']);
  } else {
    const x = b.input('x', F, ['B', c.in_channels, 'H', 'W']);
    b.output(encoder(graph, c, x), 'moments', F, ['B', 2 * c.embed_dim, 'h', 'w']);
  }
  return b.encode();
}
