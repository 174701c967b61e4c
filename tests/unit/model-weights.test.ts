import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { derive, parseConfig } from '../../gpu-backend/model/config.ts';
import { SafetensorsFile, writeSafetensors, type WriteTensor } from '../../gpu-backend/model/safetensors.ts';
import {
  embedParams, expectedParams, headParams, loadWeights, paramsOfChainBlock, validateWeightsFile,
} from '../../gpu-backend/model/weights.ts';
import { GOLDEN_DIR } from '../golden.ts';

const G = GOLDEN_DIR;
const golden = parseConfig(JSON.parse(readFileSync(`${G}/case.json`, 'utf8')).config);
const dir = join(tmpdir(), `a1-w-${process.pid}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const small = { img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 3, num_heads: 2 };

/** a weights file for cfg with edits: drop names, add names, override shapes */
function fileFor(name: string, exp: Map<string, number[]>, edit: (m: Map<string, WriteTensor>) => void = () => {}): string {
  const m = new Map<string, WriteTensor>();
  for (const [k, s] of exp) m.set(k, { dtype: 'F32', shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) });
  edit(m);
  const p = join(dir, name);
  writeSafetensors(p, m);
  return p;
}

describe('weights: official names and shapes', () => {
  it('golden config: exactly the names, shapes and order of case.json weight_shapes', () => {
    const ws = JSON.parse(readFileSync(`${G}/case.json`, 'utf8')).weight_shapes as Record<string, number[]>;
    expect([...expectedParams(golden)]).toEqual(Object.entries(ws));
    const f = SafetensorsFile.open(`${G}/weights.safetensors`);
    expect(() => validateWeightsFile(f, golden)).not.toThrow();
    f.close();
  });

  it('variants: text, uncond, mlp_time_embed, qkv_bias, conv=false, video', () => {
    const t = expectedParams(parseConfig({ ...small, clip_dim: 12, num_clip_token: 5, mlp_time_embed: true, qkv_bias: true, conv: false }));
    expect(t.get('context_embed.weight')).toEqual([32, 12]);
    expect(t.get('context_embed.bias')).toEqual([32]);
    expect(t.get('pos_embed')).toEqual([1, 1 + 5 + 16, 32]);
    expect(t.get('time_embed.0.weight')).toEqual([128, 32]);
    expect(t.get('time_embed.2.weight')).toEqual([32, 128]);
    expect(t.get('mid_block.attn.qkv.bias')).toEqual([96]);
    expect(t.has('label_emb.weight')).toBe(false);
    expect(t.has('final_layer.weight')).toBe(false);
    const u = expectedParams(parseConfig(small));
    expect(u.get('pos_embed')).toEqual([1, 17, 32]);
    expect([...u.keys()].some((k) => /label_emb|context_embed|time_embed|qkv\.bias/.test(k))).toBe(false);
    expect(u.get('final_layer.weight')).toEqual([4, 4, 3, 3]);
    const v = expectedParams(parseConfig({ ...small, num_classes: 3, num_frames: 4, temporal_patch_size: 2 }));
    expect(v.get('patch_embed.proj.weight')).toEqual([32, 4, 2, 2, 2]);
    expect(v.get('decoder_pred.weight')).toEqual([2 * 2 * 2 * 4, 32]);
    expect(v.get('final_layer.weight')).toEqual([4, 4, 3, 3, 3]);
    expect(v.get('pos_embed')).toEqual([1, 2 + 2 * 16, 32]);
    expect(v.get('label_emb.weight')).toEqual([3, 32]);
    const r = expectedParams(parseConfig({ ...small, mlp_ratio: 2.5, embed_dim: 30, num_heads: 3 }));
    expect(r.get('in_blocks.0.mlp.fc1.weight')).toEqual([75, 30]);
  });

  it('U-ViT-H/2 (imagenet256_uvit_huge) has ~501M parameters', () => {
    const h = parseConfig({ img_size: 32, patch_size: 2, in_chans: 4, embed_dim: 1152, depth: 28, num_heads: 16, num_classes: 1001, conv: false });
    let total = 0;
    for (const s of expectedParams(h).values()) total += s.reduce((a, b) => a * b, 1);
    expect(total).toBeGreaterThan(495e6);
    expect(total).toBeLessThan(505e6);
  });

  it('shards: embed + every chain block + head partition the parameters; skip_linear only in out_blocks', () => {
    for (const cfg of [golden, parseConfig({ ...small, clip_dim: 8, mlp_time_embed: true, depth: 6 })]) {
      const d = derive(cfg);
      const all = [...embedParams(cfg)];
      for (let c = 0; c < d.numBlocks; c++) all.push(...paramsOfChainBlock(cfg, c));
      all.push(...headParams(cfg));
      expect(new Set(all).size).toBe(all.length);
      expect(all.sort()).toEqual([...expectedParams(cfg).keys()].sort());
      expect(paramsOfChainBlock(cfg, d.n).some((k) => k.includes('skip_linear'))).toBe(false);
      expect(paramsOfChainBlock(cfg, d.n - 1)[0]).toBe(`in_blocks.${d.n - 1}.norm1.weight`);
      expect(paramsOfChainBlock(cfg, d.n + 1)).toContain('out_blocks.0.skip_linear.weight');
      expect(() => paramsOfChainBlock(cfg, d.numBlocks)).toThrow(/chain index \d+ out of range/);
    }
    expect(embedParams(golden)).toEqual(['pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias', 'label_emb.weight']);
    expect(headParams(golden)).toEqual(['norm.weight', 'norm.bias', 'decoder_pred.weight', 'decoder_pred.bias', 'final_layer.weight', 'final_layer.bias']);
  });
});

describe('weights: validation and loading', () => {
  const exp = expectedParams(golden);

  it('mis-shaped tensor: names the file, tensor, both shapes', () => {
    const p = fileFor('mis.safetensors', exp, (m) => { m.set('in_blocks.0.attn.qkv.weight', { dtype: 'F32', shape: [192, 32], data: new Float32Array(192 * 32) }); });
    expect(() => loadWeights(p, golden)).toThrow(
      `weights ${p} do not match the config: tensor "in_blocks.0.attn.qkv.weight" has shape [192,32], config expects [192,64]`);
  });

  it('missing and unexpected tensors are all listed, with hints', () => {
    const p = fileFor('miss.safetensors', exp, (m) => {
      m.delete('final_layer.weight');
      m.delete('final_layer.bias');
      m.delete('mid_block.mlp.fc2.bias');
      m.set('in_blocks.0.attn.qkv.bias', { dtype: 'F32', shape: [192], data: new Float32Array(192) });
    });
    const f = SafetensorsFile.open(p);
    expect(() => validateWeightsFile(f, golden)).toThrow(
      /missing 3 tensors: "mid_block\.mlp\.fc2\.bias", "final_layer\.weight", "final_layer\.bias"; unexpected 1 tensor: "in_blocks\.0\.attn\.qkv\.bias".*hint: conv=true in the config, but the file lacks final_layer/);
    f.close();
  });

  it('wrong depth / variant give hints', () => {
    const deeper = expectedParams(parseConfig({ ...JSON.parse(readFileSync(`${G}/case.json`, 'utf8')).config, depth: 9 }));
    const p = fileFor('deep.safetensors', deeper);
    expect(() => loadWeights(p, golden)).toThrow(/unexpected 24 tensors: .*hint: the file has 4 in_blocks, config depth 7 gives 3/);
    const q = fileFor('uncond.safetensors', exp, (m) => m.delete('label_emb.weight'));
    expect(() => loadWeights(q, golden)).toThrow(/missing 1 tensor: "label_emb\.weight".*the file looks uncond-conditioned, the config is class/);
  });

  it('loadWeights reads only the requested names and equals the file', () => {
    const names = ['mid_block.attn.qkv.weight', 'pos_embed'];
    const w = loadWeights(`${G}/weights.safetensors`, golden, names);
    expect([...w.keys()]).toEqual(names);
    expect(w.get('pos_embed')!.dims).toEqual([1, 66, 64]);
    const f = SafetensorsFile.open(`${G}/weights.safetensors`);
    expect(Array.from(w.get('mid_block.attn.qkv.weight')!.data)).toEqual(Array.from(f.readFloat32('mid_block.attn.qkv.weight')));
    f.close();
    expect(() => loadWeights(`${G}/weights.safetensors`, golden, ['nope'])).toThrow(/requested names not in the config's parameters: "nope"/);
  });

  it('F16 / BF16 weight files load as float32', () => {
    const p = fileFor('half.safetensors', exp, (m) => { for (const [k, v] of m) m.set(k, { ...v, dtype: k.endsWith('bias') ? 'BF16' : 'F16' }); });
    const w = loadWeights(p, golden);
    expect(w.size).toBe(exp.size);
    expect(w.get('norm.bias')!.data).toBeInstanceOf(Float32Array);
  });
});
