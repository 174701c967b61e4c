import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { initTensor, initWeights, initWeightsToFile, Rng } from '../../gpu-backend/model/initWeights.ts';
import { SafetensorsFile } from '../../gpu-backend/model/safetensors.ts';
import { expectedParams, loadWeights } from '../../gpu-backend/model/weights.ts';

const cfg = parseConfig({ img_size: 16, patch_size: 2, in_chans: 4, embed_dim: 64, depth: 7, num_heads: 4, num_classes: 10, mlp_time_embed: true });
const dir = join(tmpdir(), `a1-init-${process.pid}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function stats(a: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0;
  let s2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of a) {
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), min, max };
}

describe('initWeights (random demo weights)', () => {
  it('Rng: deterministic per (seed, stream), standard normal moments', () => {
    const a = new Rng(7, 'x');
    const b = new Rng(7, 'x');
    const c = new Rng(7, 'y');
    const va = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(va);
    expect(Array.from({ length: 5 }, () => c.nextU32())).not.toEqual(va);
    const r = new Rng(1);
    const n = new Float32Array(200_000).map(() => r.normal());
    const s = stats(n);
    expect(Math.abs(s.mean)).toBeLessThan(0.01);
    expect(Math.abs(s.std - 1)).toBeLessThan(0.01);
    expect(() => new Rng(-1)).toThrow(/seed must be a non-negative integer/);
  });

  it('official init with perturb 0: trunc_normal .02 Linear/pos_embed, zero biases, LN 1/0, conv uniform, embedding N(0,1)', () => {
    const w = initWeights(cfg, 3, { perturb: 0 });
    expect([...w.keys()]).toEqual([...expectedParams(cfg).keys()]);
    for (const k of ['in_blocks.0.mlp.fc1.weight', 'out_blocks.1.skip_linear.weight', 'pos_embed', 'time_embed.0.weight']) {
      expect(Math.abs(stats(w.get(k)!.data).std - 0.02), k).toBeLessThan(0.001);
    }
    for (const k of ['in_blocks.0.mlp.fc1.bias', 'decoder_pred.bias', 'norm.bias', 'mid_block.norm1.bias', 'time_embed.2.bias']) {
      expect(w.get(k)!.data.every((v) => v === 0), k).toBe(true);
    }
    for (const k of ['norm.weight', 'mid_block.norm2.weight']) expect(w.get(k)!.data.every((v) => v === 1), k).toBe(true);
    const pe = stats(w.get('patch_embed.proj.weight')!.data);
    expect(pe.max).toBeLessThanOrEqual(1 / 4); // fan_in = 4*2*2 = 16
    expect(pe.min).toBeGreaterThanOrEqual(-1 / 4);
    expect(pe.std).toBeGreaterThan(0.1); // uniform(-.25,.25) has std .144
    expect(stats(w.get('final_layer.bias')!.data).max).toBeLessThanOrEqual(1 / 6); // fan_in 36
    expect(Math.abs(stats(w.get('label_emb.weight')!.data).std - 1)).toBeLessThan(0.1);
  });

  it('default perturb 0.05 makes biases and LayerNorms non-trivial (like the golden case)', () => {
    const w = initWeights(cfg, 3);
    expect(Math.abs(stats(w.get('in_blocks.0.mlp.fc1.bias')!.data).std - 0.05)).toBeLessThan(0.01);
    const ln = stats(w.get('norm.weight')!.data);
    expect(Math.abs(ln.mean - 1)).toBeLessThan(0.03);
    expect(ln.std).toBeGreaterThan(0.03);
    expect(Math.abs(stats(w.get('in_blocks.0.mlp.fc1.weight')!.data).std - Math.hypot(0.02, 0.05))).toBeLessThan(0.002);
  });

  it('deterministic in the seed; any subset equals the whole model', () => {
    const a = initWeights(cfg, 11);
    const b = initWeights(cfg, 11, { names: ['out_blocks.2.attn.qkv.weight'] });
    expect(Array.from(b.get('out_blocks.2.attn.qkv.weight')!.data)).toEqual(Array.from(a.get('out_blocks.2.attn.qkv.weight')!.data));
    expect(Array.from(initTensor(cfg, 11, 'pos_embed'))).toEqual(Array.from(a.get('pos_embed')!.data));
    expect(Array.from(initTensor(cfg, 12, 'pos_embed'))).not.toEqual(Array.from(a.get('pos_embed')!.data));
    expect(() => initWeights(cfg, 1, { names: ['bogus'] })).toThrow(/"bogus" is not a parameter/);
  });

  it('initWeightsToFile writes a valid file equal to initWeights, with metadata; F16 option', () => {
    const p = join(dir, 'w.safetensors');
    let calls = 0;
    initWeightsToFile(cfg, 5, p, { onProgress: () => calls++ });
    expect(calls).toBe(expectedParams(cfg).size);
    const f = SafetensorsFile.open(p);
    expect(f.metadata).toMatchObject({ format: 'pt', seed: '5', perturb: '0.05' });
    expect(f.metadata.generator).toMatch(/random demo weights/);
    f.close();
    const fromFile = loadWeights(p, cfg);
    const mem = initWeights(cfg, 5);
    const differing = [...mem].filter(([k, v]) => fromFile.get(k)!.data.some((x, i) => x !== v.data[i])).map(([k]) => k);
    expect(differing).toEqual([]);
    const p16 = join(dir, 'w16.safetensors');
    initWeightsToFile(cfg, 5, p16, { dtype: 'F16' });
    const h = loadWeights(p16, cfg, ['in_blocks.0.attn.proj.weight']).get('in_blocks.0.attn.proj.weight')!.data;
    const ref = mem.get('in_blocks.0.attn.proj.weight')!.data;
    let worst = 0; // error relative to the F16 rounding bound
    for (let i = 0; i < h.length; i++) worst = Math.max(worst, Math.abs(h[i] - ref[i]) / (Math.abs(ref[i]) * 2 ** -11 + 6e-8));
    expect(worst).toBeLessThanOrEqual(1);
    expect(worst).toBeGreaterThan(0); // it really was rounded
  });
});
