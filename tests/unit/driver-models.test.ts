// Tokenizers, the demo text encoder and latent decoder (shapes, determinism), and the driver PRNG.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../gpu-backend/onnx/graph.ts';
import { DataType } from '../../gpu-backend/onnx/onnx.ts';
import { DecoderConfigSchema, LatentDecoder } from '../../gpu-backend/driver/decoder.ts';
import { buildDemoDecoder, buildDemoTextEncoder } from '../../gpu-backend/demo/models.ts';
import { Rng, jobNoise } from '../../gpu-backend/driver/rng.ts';
import { PromptEncoder, TextEncoderConfigSchema } from '../../gpu-backend/driver/text/encoder.ts';
import { ByteTokenizer } from '../../gpu-backend/driver/text/tokenizer.ts';
import { ClipBpeTokenizer } from '../../gpu-backend/driver/text/clip.ts';

const dir = mkdtempSync(join(tmpdir(), 'e2-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array | Float32Array) => createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');

describe('driver PRNG', () => {
  it('is a pure function of the seed, ~N(0,1), and batch item b uses seed + b', () => {
    const a = jobNoise(7, [4, 8, 8]).initial;
    expect(sha(a)).toBe(sha(jobNoise(7, [4, 8, 8]).initial));
    expect(sha(a)).not.toBe(sha(jobNoise(8, [4, 8, 8]).initial));
    const two = jobNoise(7, [4, 8, 8], 2).initial;
    expect(Array.from(two.subarray(0, 256))).toEqual(Array.from(a));
    expect(Array.from(two.subarray(256))).toEqual(Array.from(jobNoise(8, [4, 8, 8]).initial));
    const big = new Rng(123).fillNormal(new Float32Array(200_000));
    let m = 0, v = 0;
    for (const x of big) m += x;
    m /= big.length;
    for (const x of big) v += (x - m) ** 2;
    v /= big.length;
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(Math.abs(v - 1)).toBeLessThan(0.01);
    // pinned: the documented generator must not drift (xoshiro128** seeded by SplitMix32)
    const r = new Rng(0);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([50113177, 335868056, 2212912378]); // = an independent Python xoshiro128**
    expect(() => new Rng(-1)).toThrow(/non-negative safe integer/);
  });
});

describe('tokenizers', () => {
  it('byte tokenizer: UTF-8 bytes + 1, padded with 0, truncated', () => {
    const t = new ByteTokenizer(6);
    expect(t.encode('hi')).toEqual([105, 106, 0, 0, 0, 0]);
    expect(t.encode('é')).toEqual([0xc3 + 1, 0xa9 + 1, 0, 0, 0, 0]);
    expect(t.encode('abcdefgh')).toEqual([98, 99, 100, 101, 102, 103]);
    expect(t.encode('')).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('CLIP BPE tokenizer: merges, </w> word ends, bos/eos, pad, truncation', () => {
    const vocab: Record<string, number> = { '<|startoftext|>': 100, '<|endoftext|>': 101, 'r': 1, 'e': 2, 'd': 3, 'd</w>': 4, 're': 5, 'red</w>': 6, 'b': 7, 'a': 8, 'l': 9, 'l</w>': 10, 'ba': 11, 'll</w>': 12, 'ball</w>': 13, '!</w>': 14 };
    const merges = ['r e', 're d</w>', 'b a', 'l l</w>', 'ba ll</w>'];
    const t = new ClipBpeTokenizer(vocab, merges, 8);
    expect(t.encode('  Red   BALL!')).toEqual([100, 6, 13, 14, 101, 101, 101, 101]);
    expect(new ClipBpeTokenizer(vocab, merges, 3, 0).encode('red ball')).toEqual([100, 6, 101]);
    expect(t.encode('')).toEqual([100, 101, 101, 101, 101, 101, 101, 101]);
  });
});

describe('demo text encoder (seeded, untrained)', () => {
  it('input_ids [B,n] → [B,n,dim], same seed → same bytes and outputs; empty prompt is the uncond context', async () => {
    const a = buildDemoTextEncoder({ numTokens: 8, dim: 16, seed: 3 });
    expect(sha(a)).toBe(sha(buildDemoTextEncoder({ numTokens: 8, dim: 16, seed: 3 })));
    expect(sha(a)).not.toBe(sha(buildDemoTextEncoder({ numTokens: 8, dim: 16, seed: 4 })));
    const path = join(dir, 'te.onnx');
    writeFileSync(path, a);
    const cfg = TextEncoderConfigSchema.parse({ onnx: path, tokenizer: { type: 'bytes' }, num_tokens: 8, dim: 16 });
    const enc = await PromptEncoder.create(cfg);
    const ctx = await enc.encode(['a red ball', '']);
    expect(ctx.dims).toEqual([2, 8, 16]);
    expect(ctx.data.every(Number.isFinite)).toBe(true);
    const again = await enc.encode(['', 'a red ball']);
    expect(Array.from(again.data.subarray(0, 128))).toEqual(Array.from(ctx.data.subarray(128)));
    expect(Array.from(again.data.subarray(128))).toEqual(Array.from(ctx.data.subarray(0, 128)));
    expect(sha(ctx.data.subarray(0, 128))).not.toBe(sha(ctx.data.subarray(128)));
    await enc.release();
    // a CLIP BPE tokenizer plugs in by config (vocab.json + merges.txt), feeding the same ONNX input
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify({ '<|startoftext|>': 100, '<|endoftext|>': 101, 'h': 1, 'i</w>': 2, 'hi</w>': 3 }));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\nh i</w>\n');
    const clipCfg = TextEncoderConfigSchema.parse({ onnx: path, tokenizer: { type: 'clip-bpe', vocab: join(dir, 'vocab.json'), merges: join(dir, 'merges.txt') }, num_tokens: 8, dim: 16 });
    const clip = await PromptEncoder.create(clipCfg);
    expect(Array.from(clip.tokenize(['Hi']).data, Number)).toEqual([100, 3, 101, 101, 101, 101, 101, 101]);
    expect((await clip.encode(['hi'])).dims).toEqual([1, 8, 16]);
    await clip.release();
    const bad = TextEncoderConfigSchema.parse({ onnx: path, tokenizer: { type: 'bytes' }, num_tokens: 8, dim: 16, output: 'nope' });
    await expect(PromptEncoder.create(bad)).rejects.toThrow(/no output "nope" \(outputs: last_hidden_state\)/);
  });
});

describe('latent decoder', () => {
  it('demo video decoder: [B,C,F,h,w] → frames ×4 in time, ×8 in space, RGB24, deterministic, trimmed', async () => {
    const bytes = buildDemoDecoder({ channels: 4, size: 4, temporal: 4, spatial: 8, hidden: 8, seed: 5 });
    expect(sha(bytes)).toBe(sha(buildDemoDecoder({ channels: 4, size: 4, temporal: 4, spatial: 8, hidden: 8, seed: 5 })));
    const path = join(dir, 'dec.onnx');
    writeFileSync(path, bytes);
    const dec = await LatentDecoder.create(DecoderConfigSchema.parse({ onnx: path, temporal: 4, spatial: 8 }));
    const z = { dtype: 'float32' as const, dims: [2, 4, 2, 4, 4], data: jobNoise(1, [4, 2, 4, 4], 2).initial };
    const clips = await dec.decode(z);
    expect(clips).toHaveLength(2);
    expect(clips[0]).toMatchObject({ width: 32, height: 32 });
    expect(clips[0].frames).toHaveLength(8);
    expect(clips[0].frames[0]).toHaveLength(32 * 32 * 3);
    const again = await dec.decode(z, 6);
    expect(again[0].frames).toHaveLength(6);
    expect(sha(again[1].frames[5])).toBe(sha(clips[1].frames[5]));
    expect(sha(clips[0].frames[0])).not.toBe(sha(clips[1].frames[0]));
    await expect(dec.decode({ dtype: 'float32', dims: [1, 4, 4, 4], data: new Float32Array(64) })).rejects.toThrow(/\[B,C,F,h,w\]/);
    // decodes that overlap do not share the reused output buffer
    const both = await Promise.all([dec.decode(z), dec.decode(z, 6)]);
    expect(both.map((c) => sha(c[1].frames[5]))).toEqual([sha(clips[1].frames[5]), sha(clips[1].frames[5])]);
    await dec.release();
    // a config that does not match the network's output says what came out
    const wrong = await LatentDecoder.create(DecoderConfigSchema.parse({ onnx: path, temporal: 4, spatial: 4 }));
    await expect(wrong.decode(z)).rejects.toThrow(/output \[2,3,8,32,32\], expected \[2,3,8,16,16\]/);
    await wrong.release();
  });

  it('image layout (a per-frame 2-D VAE): scale_factor applied, [-1,1] mapped to 0..255, frames in order', async () => {
    // toy "VAE": out = DepthToSpace(conv1x1(z)) with weights picking channel 0 → value z0 for every pixel of the 2×2 block
    const g = new GraphBuilder('toy_vae', 17);
    const z = g.input('latent_sample', DataType.FLOAT, ['N', 2, 2, 2]);
    const w = new Float32Array(12 * 2);
    for (let o = 0; o < 12; o++) w[o * 2] = 1;
    const y = g.op('Conv', [z, g.f32('w', [12, 2, 1, 1], w)], { kernel_shape: [1, 1] });
    g.output(g.op('DepthToSpace', [y], { blocksize: 2, mode: 'CRD' }), 'sample', DataType.FLOAT, ['N', 3, 4, 4]);
    const path = join(dir, 'vae.onnx');
    writeFileSync(path, g.encode());
    const dec = await LatentDecoder.create(
      DecoderConfigSchema.parse({ onnx: path, layout: 'image', input: 'latent_sample', output: 'sample', temporal: 1, spatial: 2, scale_factor: 0.5, output_range: '-1,1', frames_per_call: 2 }),
    );
    // latents [1, C=2, F=3, 2, 2]; channel 0 of frame f is (f - 1) * 0.25 → decoded (f - 1) * 0.5 → pixel round(((f-1)*0.5 + 1)/2*255)
    const data = new Float32Array(2 * 3 * 4);
    for (let f = 0; f < 3; f++) data.fill((f - 1) * 0.25, f * 4, f * 4 + 4);
    const [clip] = await dec.decode({ dtype: 'float32', dims: [1, 2, 3, 2, 2], data });
    expect(clip.frames.map((fr) => fr[0])).toEqual([64, 128, 191]);
    expect(clip.frames[2].every((v) => v === 191)).toBe(true);
    await dec.release();
  });
});
