// Clear errors from the graph builder and the engine: bad segments, missing/mis-sized weights, bad input tensors,
// CUDA requested without the CUDA provider.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32 } from '../../shared/tensor.ts';
import { Engine } from '../../gpu-backend/engine/engine.ts';
import { cudaProviderInstalled, sessionOptions } from '../../gpu-backend/engine/session.ts';
import { buildSegmentModel, wholeModelSegment } from '../../gpu-backend/model/build/segment.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { initWeights } from '../../gpu-backend/model/initWeights.ts';

const cfg = parseConfig({ img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 16, depth: 2, num_heads: 2, num_classes: 3 });
const weights = initWeights(cfg, 1);
const video = parseConfig({ img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 16, depth: 2, num_heads: 2, clip_dim: 8, num_clip_token: 2, num_frames: 4, temporal_patch_size: 2 });

describe('graph builder errors', () => {
  it('segment with wrong skips, range or flags', () => {
    const whole = wholeModelSegment(cfg); // n = 1: chain 0..2
    expect(() => buildSegmentModel(cfg, weights, { ...whole, end: 2, head: true })).toThrow(/head must be false/);
    expect(() => buildSegmentModel(cfg, weights, { ...whole, start: 0, end: 1, head: false })).toThrow(/skipsOut must be \[0\], got \[\]/);
    expect(() => buildSegmentModel(cfg, weights, { ...whole, start: 1, embed: false, skipsIn: [] })).toThrow(/skipsIn must be \[0\]/);
    expect(() => buildSegmentModel(cfg, weights, { ...whole, end: 9 })).toThrow(/range must satisfy/);
  });

  it('missing or mis-sized weight', () => {
    const w = new Map(weights);
    w.delete('mid_block.attn.qkv.weight');
    expect(() => buildSegmentModel(cfg, w, wholeModelSegment(cfg))).toThrow(/weight "mid_block.attn.qkv.weight" is missing/);
    w.set('mid_block.attn.qkv.weight', float32([3]));
    expect(() => buildSegmentModel(cfg, w, wholeModelSegment(cfg))).toThrow(/has 3 elements, expected 768/);
  });
});

describe('engine input errors', () => {
  let e: Engine;
  let ev: Engine;
  beforeAll(async () => {
    e = await Engine.create({ config: cfg, weights, threads: 1 });
    ev = await Engine.create({ config: video, weights: initWeights(video, 2), threads: 1 });
  });
  afterAll(async () => {
    await e.release();
    await ev.release();
  });
  const x = float32([2, 4, 8, 8]);
  const t = float32([2], Float32Array.of(1, 2));
  const y = BigInt64Array.of(0n, 2n);

  it('bad shapes, labels and conditioning', async () => {
    await expect(e.forward({ x: float32([2, 3, 8, 8]), timesteps: t, y })).rejects.toThrow(/input x has shape \[2,3,8,8\], expected \[B,C,S,S\] = \[2,4,8,8\]/);
    await expect(e.forward({ x, timesteps: float32([1]), y })).rejects.toThrow(/timesteps has 1 entries, expected batch 2/);
    await expect(e.forward({ x, timesteps: t })).rejects.toThrow(/needs y/);
    await expect(e.forward({ x, timesteps: t, y: BigInt64Array.of(0n, 3n) })).rejects.toThrow(/label 3 is out of range \[0, 3\)/);
    await expect(e.forward({ x, timesteps: t, y, context: float32([2, 2, 8]) })).rejects.toThrow(/context given/);
    await expect(e.forward({ x: { dtype: 'float16', dims: [2, 4, 8, 8], data: new Uint16Array(512) } as never, timesteps: t, y })).rejects.toThrow(/dtype float16, expected float32/);
    await expect(e.forward({ x, timesteps: { dtype: 'uint8', dims: [2], data: new Uint8Array(2) } as never, y })).rejects.toThrow(/timesteps have dtype uint8/);
    const ref = await e.forward({ x, timesteps: t, y });
    expect(ref.dims).toEqual([2, 4, 8, 8]);
    // integer timesteps and int32 labels are cast like torch's .float() / accepted as indices
    const alt = await e.forward({ x, timesteps: { dtype: 'int64', dims: [2], data: BigInt64Array.of(1n, 2n) }, y: { dtype: 'int32', dims: [2], data: Int32Array.of(0, 2) } });
    expect([...alt.data]).toEqual([...ref.data]);
  });

  it('video: frame count must be a multiple of pt up to F; text needs context of the right shape', async () => {
    const ctx = float32([1, 2, 8]);
    await expect(ev.forward({ x: float32([1, 4, 3, 8, 8]), timesteps: float32([1]), context: ctx })).rejects.toThrow(/3 latent frames is invalid/);
    await expect(ev.forward({ x: float32([1, 4, 6, 8, 8]), timesteps: float32([1]), context: ctx })).rejects.toThrow(/6 latent frames is invalid/);
    await expect(ev.forward({ x: float32([1, 4, 2, 8, 8]), timesteps: float32([1]), context: float32([1, 3, 8]) })).rejects.toThrow(/context has shape \[1,3,8\], expected \[1,2,8\]/);
    expect((await ev.forward({ x: float32([1, 4, 2, 8, 8]), timesteps: float32([1]), context: ctx })).dims).toEqual([1, 4, 2, 8, 8]);
  });
});

describe('session options', () => {
  it('CUDA is selectable by configuration; without the provider library the error says so', async () => {
    expect(sessionOptions({ ep: 'cuda', deviceId: 1, threads: 2 })).toMatchObject({
      executionProviders: [{ name: 'cuda', deviceId: 1 }], intraOpNumThreads: 2, graphOptimizationLevel: 'all',
    });
    expect(() => sessionOptions({ threads: 0 })).toThrow(/threads must be a positive integer/);
    expect(sessionOptions({ spin: false })).toMatchObject({ extra: { session: { intra_op: { allow_spinning: '0' } } } });
    if (!cudaProviderInstalled()) {
      await expect(Engine.create({ config: cfg, weights, ep: 'cuda' })).rejects.toThrow(/no CUDA provider/);
    }
  });

  it('exactly one weight source', async () => {
    await expect(Engine.create({ config: cfg })).rejects.toThrow(/exactly one of weightsPath and weights/);
  });
});
