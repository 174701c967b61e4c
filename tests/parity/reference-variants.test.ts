// Properties of the reference forward on the variants the golden case does not cover (docs/model.md §7, §8).
import { describe, expect, it } from 'vitest';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { derive, parseConfig, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { initWeights, Rng } from '../../gpu-backend/model/initWeights.ts';
import { referenceForward, timestepEmbedding } from '../../gpu-backend/model/reference.ts';
import { maxAbsDiff } from './referenceUtil.ts';

type W = Map<string, Tensor<'float32'>>;
const base = { img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 3, num_heads: 2 };

function randn(dims: number[], seed: number, scale = 1): Tensor<'float32'> {
  const r = new Rng(seed, 'input');
  const t = float32(dims);
  for (let i = 0; i < t.data.length; i++) t.data[i] = scale * r.normal();
  return t;
}
const ts = (...v: number[]) => float32([v.length], Float32Array.from(v));
const i64 = (...v: number[]) => ({ dtype: 'int64' as const, dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
const reshaped = (t: Tensor<'float32'>, dims: number[]) => float32(dims, t.data);

/** the video (F=1, pt=1) weights of a 2-D model: Conv3d patch weight [D,C,1,p,p]; final conv kernel in the centre slice */
function videoWeightsFrom2d(cfg2d: UViTConfig, w2d: W): W {
  const d = derive(cfg2d);
  const w = new Map(w2d);
  w.set('patch_embed.proj.weight', reshaped(w2d.get('patch_embed.proj.weight')!, [d.D, d.C, 1, d.p, d.p]));
  if (cfg2d.conv) {
    const k2 = w2d.get('final_layer.weight')!.data;
    // slices kt=0 and kt=2 only ever meet the zero padding when F=1: fill them with noise to prove it
    const k3 = randn([d.C, d.C, 3, 3, 3], 99).data;
    for (let co = 0; co < d.C; co++) {
      for (let ci = 0; ci < d.C; ci++) {
        for (let i = 0; i < 9; i++) k3[((co * d.C + ci) * 3 + 1) * 9 + i] = k2[(co * d.C + ci) * 9 + i];
      }
    }
    w.set('final_layer.weight', float32([d.C, d.C, 3, 3, 3], k3));
  }
  return w;
}

describe('timestepEmbedding', () => {
  it('is cos first, then sin; frequencies exp(-ln(1e4) i / half); zero column for odd D', () => {
    const e = timestepEmbedding([1, 0], 4);
    const want = [Math.cos(1), Math.cos(0.01), Math.sin(1), Math.sin(0.01), 1, 1, 0, 0];
    for (let i = 0; i < 8; i++) expect(e[i]).toBeCloseTo(want[i], 7);
    const o = timestepEmbedding([3], 5);
    expect(o[4]).toBe(0);
    expect(o[0]).toBeCloseTo(Math.cos(3), 7);
    expect(o[2]).toBeCloseTo(Math.sin(3), 7);
    // a sin-first embedding would put sin(1) first
    expect(Math.abs(e[0] - Math.sin(1))).toBeGreaterThan(0.1);
  });

  it('float32 mode rounds freqs and args like torch; float64 mode does not', () => {
    const t = 900.0999755859375;
    const a32 = timestepEmbedding([t], 64)[5];
    const a64 = timestepEmbedding([t], 64, 'float64')[5];
    const f = Math.fround(Math.exp(Math.fround(Math.fround(Math.fround(-Math.log(10000)) * 5) / 32)));
    expect(a32).toBe(Math.cos(Math.fround(t * f)));
    expect(a64).toBe(Math.cos(t * Math.exp((-Math.log(10000) * 5) / 32)));
  });
});

describe('video extension (docs/model.md §8)', () => {
  it.each([
    ['class, conv', { ...base, num_classes: 5 }],
    ['text, conv=false, mlp_time_embed', { ...base, clip_dim: 6, num_clip_token: 3, conv: false, mlp_time_embed: true }],
    ['uncond RGB p=4, 3 heads, qkv_bias', { img_size: 16, patch_size: 4, in_chans: 3, embed_dim: 36, depth: 4, num_heads: 3, qkv_bias: true }],
  ])('F=1, pt=1 equals the 2-D model with the same weights (%s)', (_n, raw) => {
    const c2 = parseConfig(raw);
    const c3 = parseConfig({ ...raw, num_frames: 1 });
    const d = derive(c2);
    const w2 = initWeights(c2, 1);
    const x = randn(d.inputShape(2), 2);
    const inputs = {
      x, timesteps: ts(10, 900.1),
      y: d.variant === 'class' ? i64(1, 4) : undefined,
      context: d.variant === 'text' ? randn([2, 3, 6], 3) : undefined,
    };
    const r2 = referenceForward(c2, w2, inputs);
    const r3 = referenceForward(c3, videoWeightsFrom2d(c2, w2), { ...inputs, x: reshaped(x, [2, d.C, 1, d.S, d.S]) });
    expect(r3.output.dims).toEqual([2, d.C, 1, d.S, d.S]);
    expect(maxAbsDiff(reshaped(r3.output, r2.output.dims), r2.output)).toBeLessThanOrEqual(1e-12);
    expect(maxAbsDiff(r3.intermediates.get('mid_block')!, r2.intermediates.get('mid_block')!)).toBeLessThanOrEqual(1e-12);
    // and the test is not vacuous: a different input frame changes the output
    const r3b = referenceForward(c3, videoWeightsFrom2d(c2, w2), { ...inputs, x: randn([2, d.C, 1, d.S, d.S], 7) });
    expect(maxAbsDiff(r3b.output, r3.output)).toBeGreaterThan(1e-3);
  });

  it('pt=2 layouts: (C,pt,p,p) patch flattening and (pt,p1,p2,C) decoder equal a 2-D model with C*pt channels', () => {
    // video: C=2, F=2, pt=2 -> one temporal token slab; 2-D: C'=4 channels c*pt+kt (same memory for x and patch weight)
    const cv = parseConfig({ ...base, in_chans: 2, num_frames: 2, temporal_patch_size: 2, conv: false, num_classes: 3 });
    const c2 = parseConfig({ ...base, in_chans: 4, conv: false, num_classes: 3 });
    const wv = initWeights(cv, 4);
    const w2 = new Map(wv);
    w2.set('patch_embed.proj.weight', reshaped(wv.get('patch_embed.proj.weight')!, [32, 4, 2, 2]));
    // decoder row (kt,p1,p2,c) of the video model is row (p1,p2,c*pt+kt) of the 2-D model
    const dw = wv.get('decoder_pred.weight')!.data;
    const db = wv.get('decoder_pred.bias')!.data;
    const dw2 = new Float32Array(dw.length);
    const db2 = new Float32Array(db.length);
    for (let kt = 0; kt < 2; kt++) {
      for (let p1 = 0; p1 < 2; p1++) {
        for (let p2 = 0; p2 < 2; p2++) {
          for (let c = 0; c < 2; c++) {
            const rv = ((kt * 2 + p1) * 2 + p2) * 2 + c;
            const r2 = (p1 * 2 + p2) * 4 + c * 2 + kt;
            dw2.set(dw.subarray(rv * 32, rv * 32 + 32), r2 * 32);
            db2[r2] = db[rv];
          }
        }
      }
    }
    w2.set('decoder_pred.weight', float32([16, 32], dw2));
    w2.set('decoder_pred.bias', float32([16], db2));
    const x = randn([1, 2, 2, 8, 8], 5);
    const rv = referenceForward(cv, wv, { x, timesteps: ts(321.5), y: i64(2) });
    const r2 = referenceForward(c2, w2, { x: reshaped(x, [1, 4, 8, 8]), timesteps: ts(321.5), y: i64(2) });
    expect(rv.output.dims).toEqual([1, 2, 2, 8, 8]);
    expect(maxAbsDiff(reshaped(rv.output, [1, 4, 8, 8]), r2.output)).toBeLessThanOrEqual(1e-12);
  });

  it('a clip shorter than num_frames uses the first extras + (F\'/pt) grid^2 pos_embed rows', () => {
    const c4 = parseConfig({ ...base, num_classes: 3, num_frames: 4, temporal_patch_size: 2 });
    const c2 = parseConfig({ ...base, num_classes: 3, num_frames: 2, temporal_patch_size: 2 });
    const w4 = initWeights(c4, 6);
    const T2 = derive(c2).T;
    const w2 = new Map(w4);
    w2.set('pos_embed', float32([1, T2, 32], w4.get('pos_embed')!.data.slice(0, T2 * 32)));
    const x = randn([2, 4, 2, 8, 8], 8);
    const short = referenceForward(c4, w4, { x, timesteps: ts(5, 50), y: i64(0, 2) });
    const exact = referenceForward(c2, w2, { x, timesteps: ts(5, 50), y: i64(0, 2) });
    expect(short.output.dims).toEqual([2, 4, 2, 8, 8]);
    expect(short.intermediates.get('tokens_after_pos_embed')!.dims).toEqual([2, T2, 32]);
    expect(maxAbsDiff(short.output, exact.output)).toBe(0);
    const full = referenceForward(c4, w4, { x: randn([2, 4, 4, 8, 8], 9), timesteps: ts(5, 50), y: i64(0, 2) });
    expect(full.output.dims).toEqual([2, 4, 4, 8, 8]);
    expect(() => referenceForward(c4, w4, { x: randn([2, 4, 3, 8, 8], 9), timesteps: ts(5, 50), y: i64(0, 2) }))
      .toThrow(/multiple of temporal_patch_size 2/);
  });
});

describe('token layout and optional parts', () => {
  /** tokens_after_pos_embed minus pos_embed, row r of batch b */
  const rowMinusPos = (r: ReturnType<typeof referenceForward>, w: W, T: number, D: number, b: number, t: number) => {
    const tok = r.intermediates.get('tokens_after_pos_embed')!.data;
    const pos = w.get('pos_embed')!.data;
    return Array.from({ length: D }, (_, o) => tok[(b * T + t) * D + o] - pos[t * D + o]);
  };
  const close = (a: number[], b: ArrayLike<number>, tol = 2e-6) =>
    a.every((v, i) => Math.abs(v - b[i]) <= tol * (1 + Math.abs(b[i])));

  it('class: [label, time, patches]', () => {
    const cfg = parseConfig({ ...base, num_classes: 5 });
    const w = initWeights(cfg, 1);
    const r = referenceForward(cfg, w, { x: randn([1, 4, 8, 8], 1), timesteps: ts(77), y: i64(3) });
    const T = derive(cfg).T;
    expect(close(rowMinusPos(r, w, T, 32, 0, 0), w.get('label_emb.weight')!.data.subarray(3 * 32, 4 * 32))).toBe(true);
    expect(close(rowMinusPos(r, w, T, 32, 0, 1), timestepEmbedding([77], 32))).toBe(true);
  });

  it('text: [time, context_embed(ctx)..., patches], with the time MLP Linear-SiLU-Linear', () => {
    const cfg = parseConfig({ ...base, clip_dim: 6, num_clip_token: 3, mlp_time_embed: true });
    const w = initWeights(cfg, 2);
    const ctx = randn([1, 3, 6], 4);
    const r = referenceForward(cfg, w, { x: randn([1, 4, 8, 8], 1), timesteps: ts(500), context: ctx });
    const T = derive(cfg).T;
    const e = timestepEmbedding([500], 32);
    const lin = (x: ArrayLike<number>, Wt: Float32Array, b: Float32Array, o: number, i: number) =>
      Array.from({ length: o }, (_, r) => { let s = b[r]; for (let k = 0; k < i; k++) s += Wt[r * i + k] * x[k]; return s; });
    const h = lin(e, w.get('time_embed.0.weight')!.data, w.get('time_embed.0.bias')!.data, 128, 32).map((v) => v / (1 + Math.exp(-v)));
    const temb = lin(h, w.get('time_embed.2.weight')!.data, w.get('time_embed.2.bias')!.data, 32, 128);
    expect(close(rowMinusPos(r, w, T, 32, 0, 0), temb)).toBe(true);
    for (let j = 0; j < 3; j++) {
      const c = lin(ctx.data.subarray(j * 6, j * 6 + 6), w.get('context_embed.weight')!.data, w.get('context_embed.bias')!.data, 32, 6);
      expect(close(rowMinusPos(r, w, T, 32, 0, 1 + j), c), `ctx ${j}`).toBe(true);
    }
  });

  it('uncond: [time, patches]; conv=false returns the unpatchified decoder output', () => {
    const cfg = parseConfig({ ...base, conv: false });
    const w = initWeights(cfg, 3);
    const r = referenceForward(cfg, w, { x: randn([2, 4, 8, 8], 1), timesteps: ts(1, 1000) });
    expect(derive(cfg).T).toBe(17);
    expect(close(rowMinusPos(r, w, 17, 32, 1, 0), timestepEmbedding([1000], 32))).toBe(true);
    expect(maxAbsDiff(r.output, r.intermediates.get('unpatchified_before_final_layer')!)).toBe(0);
  });

  it('qkv_bias: a zero bias equals the bias-free model, a non-zero one does not', () => {
    const c0 = parseConfig(base);
    const c1 = parseConfig({ ...base, qkv_bias: true });
    const w0 = initWeights(c0, 5);
    const w1 = new Map(w0);
    for (const k of initWeights(c1, 5, { perturb: 0 }).keys()) if (k.endsWith('qkv.bias')) w1.set(k, float32([96]));
    const inp = { x: randn([1, 4, 8, 8], 1), timesteps: ts(42) };
    const r0 = referenceForward(c0, w0, inp);
    expect(maxAbsDiff(referenceForward(c1, w1, inp).output, r0.output)).toBeLessThanOrEqual(1e-12);
    expect(maxAbsDiff(referenceForward(c1, initWeights(c1, 5), inp).output, r0.output)).toBeGreaterThan(1e-4);
  });

  it('near-eps LayerNorm inputs make the eps visible (eps 1e-6 instead of 1e-5 moves the output a lot)', () => {
    const cfg = parseConfig({ ...base, num_classes: 5 });
    const w = new Map(initWeights(cfg, 8));
    for (const k of ['pos_embed', 'patch_embed.proj.bias', 'label_emb.weight']) {
      const t = w.get(k)!;
      w.set(k, float32(t.dims, t.data.map((v) => v * 3e-3)));
    }
    const inp = { x: randn([1, 4, 8, 8], 1, 3e-3), timesteps: ts(10), y: i64(1) };
    const right = referenceForward(cfg, w, inp).output;
    const d = maxAbsDiff(referenceForward(cfg, w, inp, { wrong: { lnEps: 1e-6 } }).output, right);
    console.log(`near-eps inputs: eps 1e-6 vs 1e-5 moves the output by ${d.toExponential(2)}`);
    expect(d).toBeGreaterThan(1e-2);
  });
});

describe('input validation', () => {
  const cfg = parseConfig({ ...base, num_classes: 5 });
  const w = initWeights(cfg, 1);
  const x = randn([2, 4, 8, 8], 1);
  it.each([
    ['x shape', () => referenceForward(cfg, w, { x: randn([2, 4, 8, 6], 1), timesteps: ts(1, 2), y: i64(1, 2) }), /x has shape \[2,4,8,6\], expected \[2,4,8,8\]/],
    ['timesteps length', () => referenceForward(cfg, w, { x, timesteps: ts(1), y: i64(1, 2) }), /timesteps has shape \[1\], expected \[2\]/],
    ['missing y', () => referenceForward(cfg, w, { x, timesteps: ts(1, 2) }), /needs y/],
    ['y range', () => referenceForward(cfg, w, { x, timesteps: ts(1, 2), y: i64(1, 5) }), /y\[1\] = 5 is outside \[0, 5\)/],
    ['missing weight', () => { const m = new Map(w); m.delete('norm.bias'); return referenceForward(cfg, m, { x, timesteps: ts(1, 2), y: i64(1, 2) }); }, /missing weight "norm\.bias"/],
    ['context shape', () => { const c = parseConfig({ ...base, clip_dim: 6, num_clip_token: 3 }); return referenceForward(c, initWeights(c, 1), { x, timesteps: ts(1, 2), context: randn([2, 4, 6], 1) }); }, /context is float32 \[2,4,6\], expected float32 \[2,3,6\]/],
  ])('%s', (_n, run, msg) => {
    expect(run).toThrow(msg);
  });
});
