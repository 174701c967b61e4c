import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { derive, loadConfig, parseConfig } from '../../gpu-backend/model/config.ts';

const golden = { img_size: 16, patch_size: 2, in_chans: 4, embed_dim: 64, depth: 7, num_heads: 4, mlp_ratio: 4,
  qkv_bias: false, mlp_time_embed: false, num_classes: 10, conv: true };

describe('config', () => {
  it('applies the official defaults of libs/uvit.py', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ img_size: 224, patch_size: 16, in_chans: 3, embed_dim: 768, depth: 12, num_heads: 12,
      mlp_ratio: 4, qkv_bias: false, mlp_time_embed: false, num_classes: -1, conv: true, skip: true });
    expect(c.clip_dim).toBeUndefined();
    expect(c.num_frames).toBeUndefined();
    const d = derive(c);
    expect(d).toMatchObject({ variant: 'uncond', video: false, n: 6, numBlocks: 13, extras: 1, L: 196, T: 197,
      pt: 1, F: 1, grid: 14, patchDim: 768, hidden: 3072, Dh: 64 });
    expect(d.inputShape(2)).toEqual([2, 3, 224, 224]);
  });

  it('derives the golden a_cls_conv shapes', () => {
    const d = derive(parseConfig(golden));
    expect(d).toMatchObject({ variant: 'class', n: 3, numBlocks: 7, extras: 2, L: 64, T: 66, patchDim: 16,
      numClasses: 10, nullClass: 9 });
  });

  it('text variant: clip_dim implies num_clip_token 77 and extras 1+77; name uvit_t2i implies clip_dim 768', () => {
    const d = derive(parseConfig({ img_size: 32, patch_size: 2, in_chans: 4, embed_dim: 512, num_heads: 8, clip_dim: 768 }));
    expect(d.variant).toBe('text');
    expect(d.extras).toBe(78);
    const c2 = parseConfig({ name: 'uvit_t2i' });
    expect(c2.clip_dim).toBe(768);
    expect(c2.num_clip_token).toBe(77);
    expect(c2.num_classes).toBeUndefined();
  });

  it('video keys: L = (F/pt) grid^2, shorter clips', () => {
    const c = parseConfig({ ...golden, num_frames: 4, temporal_patch_size: 2 });
    const d = derive(c);
    expect(d).toMatchObject({ video: true, F: 4, pt: 2, L: 2 * 64, T: 2 + 128, patchDim: 4 * 2 * 4 });
    expect(d.inputShape(1)).toEqual([1, 4, 4, 16, 16]);
    expect(d.inputShape(1, 2)).toEqual([1, 4, 2, 16, 16]);
    expect(d.tokensFor(2)).toBe(64);
    expect(() => d.inputShape(1, 3)).toThrow(/multiple of temporal_patch_size 2/);
    expect(() => d.inputShape(1, 6)).toThrow(/num_frames 4/);
    expect(parseConfig({ ...golden, num_frames: 3 }).temporal_patch_size).toBe(1);
  });

  it.each([
    [{ foo: 1 }, /unknown key "foo"/],
    [{ embed_dim: 65, num_heads: 4 }, /embed_dim: embed_dim 65 must be divisible by num_heads 4/],
    [{ img_size: 30, patch_size: 4 }, /img_size 30 must be divisible by patch_size 4/],
    [{ num_frames: 5, temporal_patch_size: 2 }, /num_frames 5 must be divisible by temporal_patch_size 2/],
    [{ temporal_patch_size: 2 }, /temporal_patch_size requires num_frames/],
    [{ depth: 0 }, /depth: .*(>0|positive|too small)/i],
    [{ depth: 2.5 }, /depth: .*int/i],
    [{ patch_size: '2' }, /patch_size: .*number/i],
    [{ num_classes: 10, clip_dim: 768 }, /num_classes and clip_dim are mutually exclusive/],
    [{ num_clip_token: 77 }, /num_clip_token requires clip_dim/],
    [{ qk_scale: 0.125 }, /qk_scale: must be null or absent \(got 0.125\).*head_dim\^-0.5/],
    [{ skip: false }, /skip=false is not supported/],
    [{ name: 'uvit', clip_dim: 768 }, /clip_dim belongs to the text variant/],
    [{ mlp_ratio: -1 }, /mlp_ratio/],
  ])('rejects %j', (cfg, msg) => {
    expect(() => parseConfig(cfg)).toThrow(msg);
  });

  it('accepts qk_scale null and use_checkpoint (no numeric effect)', () => {
    expect(() => parseConfig({ ...golden, qk_scale: null, use_checkpoint: true })).not.toThrow();
  });

  it('parsing is idempotent (planners re-parse configs they were handed)', () => {
    for (const raw of [{}, golden, { name: 'uvit_t2i', depth: 4 }, { ...golden, num_frames: 4, temporal_patch_size: 2, qk_scale: null }]) {
      const once = parseConfig(raw);
      expect(parseConfig(JSON.parse(JSON.stringify(once)))).toEqual(once);
    }
  });

  it('loadConfig names the file on read / JSON / validation errors', () => {
    const dir = join(tmpdir(), `a1-config-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    expect(() => loadConfig(join(dir, 'nope.json'))).toThrow(/cannot read config .*nope\.json/);
    writeFileSync(join(dir, 'bad.json'), '{ not json');
    expect(() => loadConfig(join(dir, 'bad.json'))).toThrow(/config .*bad\.json is not valid JSON/);
    writeFileSync(join(dir, 'inv.json'), JSON.stringify({ depth: -1 }));
    expect(() => loadConfig(join(dir, 'inv.json'))).toThrow(/invalid U-ViT config .*inv\.json: depth/);
    writeFileSync(join(dir, 'ok.json'), JSON.stringify(golden));
    expect(loadConfig(join(dir, 'ok.json')).num_classes).toBe(10);
  });
});
