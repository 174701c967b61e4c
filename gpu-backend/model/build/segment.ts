// One ONNX model per chain segment (partition/types.ts): the whole model is the segment [0, 2n+1) with embed + head.
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { GraphBuilder } from '../../onnx/graph.ts';
import { DataType, type Dim } from '../../onnx/onnx.ts';
import { chain, type Segment, TENSOR } from '../chain.ts';
import { derive, type UViTConfig } from '../config.ts';
import { embed } from './embed.ts';
import { head } from './head.ts';
import { type AttentionImpl, block, type LayerCtx } from './layers.ts';
import { type WeightSource, weightGetter } from './weights.ts';

export interface BuildOptions {
  /** also output tokens_after_pos_embed, every block output, norm, decoder_pred, unpatchified_before_final_layer */
  intermediates?: boolean;
  /** write initializers to this file as ONNX external data (needed over 2 GiB); the model must be saved beside it */
  externalDataPath?: string;
  /** attention kernel: com.microsoft.Attention (default; bit-identical to 'ops' here and a little faster), plain ONNX ops, or com.microsoft.MultiHeadAttention */
  attention?: AttentionImpl;
}

/** The segment covering the whole chain (one stage, embed + head). */
export function wholeModelSegment(cfg: UViTConfig): Segment {
  const n = derive(cfg).n;
  return { index: 0, stage: 0, start: 0, end: chain.length(n), embed: true, head: true, skipsIn: [], skipsOut: [] };
}

/** Checks the segment against the chain: range, flags and the skips it must receive / send. */
export function checkSegment(n: number, s: Segment): void {
  const len = chain.length(n);
  const where = `segment ${s.index} [${s.start}, ${s.end})`;
  if (!(Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start < s.end && s.end <= len)) {
    throw new Error(`${where}: range must satisfy 0 <= start < end <= ${len}`);
  }
  if (s.embed !== (s.start === 0)) throw new Error(`${where}: embed must be ${s.start === 0}`);
  if (s.head !== (s.end === len)) throw new Error(`${where}: head must be ${s.end === len}`);
  const inside = (c: number) => c >= s.start && c < s.end;
  const needIn: number[] = [];
  const needOut: number[] = [];
  for (let i = 0; i < n; i++) {
    const consumer = chain.skipSource(n, i); // out-block chain index consuming in_blocks.i (2n - i)
    if (inside(consumer) && !inside(i)) needIn.push(i);
    if (inside(i) && !inside(consumer)) needOut.push(i);
  }
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, k) => v === b[k]);
  if (!same(needIn, s.skipsIn)) throw new Error(`${where}: skipsIn must be [${needIn}], got [${s.skipsIn}]`);
  if (!same(needOut, s.skipsOut)) throw new Error(`${where}: skipsOut must be [${needOut}], got [${s.skipsOut}]`);
}

export function buildSegmentModel(cfg: UViTConfig, weights: WeightSource, segment: Segment, opts: BuildOptions = {}): Uint8Array {
  checkSegment(derive(cfg).n, segment);
  // with external data, each weight goes to the data file as soon as it is made (no second copy held)
  const fd = opts.externalDataPath ? openSync(opts.externalDataPath, 'w') : undefined;
  try {
    const external = fd === undefined ? undefined : { location: basename(opts.externalDataPath!), write: (c: Uint8Array) => writeAll(fd, c) };
    return buildGraph(cfg, weights, segment, opts, new GraphBuilder(`uvit_segment_${segment.start}_${segment.end}`, 17, external)).encode();
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeAll(fd: number, c: Uint8Array): void {
  for (let done = 0; done < c.byteLength;) done += writeSync(fd, c, done, c.byteLength - done);
}

function buildGraph(cfg: UViTConfig, weights: WeightSource, segment: Segment, opts: BuildOptions, b: GraphBuilder): GraphBuilder {
  const d = derive(cfg);
  const { n, D } = d;
  const ctx: LayerCtx = {
    b,
    w: weightGetter(weights),
    D,
    H: d.H,
    hidden: d.hidden,
    qkvBias: cfg.qkv_bias,
    attention: opts.attention ?? 'contrib',
  };
  const T: Dim = d.video ? 'T' : d.T;
  const stream: Dim[] = ['B', T, D];
  const F32 = DataType.FLOAT;
  const inter = (value: string, name: string, shape: Dim[]) => {
    if (opts.intermediates) b.output(value, name, F32, shape);
  };

  let h: string;
  if (segment.embed) {
    h = embed(ctx, d, cfg.mlp_time_embed, cfg.clip_dim ?? 0).h;
    inter(h, 'tokens_after_pos_embed', stream);
  } else {
    h = b.input(TENSOR.hIn, F32, stream);
  }
  const skips = new Map<number, string>();
  for (const i of segment.skipsIn) skips.set(i, b.input(TENSOR.skip(i), F32, stream));

  for (let c = segment.start; c < segment.end; c++) {
    const name = chain.name(n, c);
    let skip: string | undefined;
    if (c > n) {
      const i = chain.skipSource(n, c);
      skip = skips.get(i);
      if (skip === undefined) throw new Error(`segment ${segment.index}: skip of in_blocks.${i} for ${name} is unavailable`);
      skips.delete(i);
    }
    h = block(ctx, h, name, skip);
    if (c < n) {
      skips.set(c, h);
      if (segment.skipsOut.includes(c)) b.output(h, TENSOR.skip(c), F32, stream);
    }
    inter(h, name, stream);
  }

  if (segment.head) {
    const o = head(ctx, d, h, cfg.conv);
    const patchRows: Dim = d.video ? 'T' : d.T;
    inter(o.norm, 'norm', ['B', patchRows, D]);
    inter(o.decoderPred, 'decoder_pred', ['B', patchRows, d.patchDim]);
    const xShape: Dim[] = d.video ? ['B', d.C, 'F', d.S, d.S] : ['B', d.C, d.S, d.S];
    inter(o.unpatchified, 'unpatchified_before_final_layer', xShape);
    b.output(o.eps, TENSOR.eps, F32, xShape);
  } else {
    b.output(h, TENSOR.hOut, F32, stream);
  }

  return b;
}
