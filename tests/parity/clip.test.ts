// The CLIP text encoder built by the graph builder against Hugging Face CLIPTextModel (the class libs/clip.py uses):
// a seeded small config saved with save_pretrained (tests/fixtures/clip/make.py), last_hidden_state within 1e-4.
// UVIT_CLIP_FIXTURES=DIR runs the same comparison at the ViT-L/14 text tower's shape (`make.py --full DIR`; 490 MB).
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { ClipTextEncoder } from '../../gpu-backend/engine/clipText.ts';
import { CLIP_VIT_L14_TEXT, clipTextParams, readClipTextConfig } from '../../gpu-backend/model/build/clipText.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { maxAbsDiff } from './referenceUtil.ts';

const DIR = process.env.UVIT_CLIP_FIXTURES ?? resolve(import.meta.dirname, '../fixtures/clip/text');
let enc: ClipTextEncoder | undefined;
afterAll(async () => enc?.release());

describe('CLIP text encoder vs Hugging Face CLIPTextModel', () => {
  it('last_hidden_state of padded prompts within 1e-4 (causal mask, quick_gelu, final LayerNorm)', async () => {
    const cfg = readClipTextConfig(join(DIR, 'config.json'));
    expect(cfg.hidden_act).toBe('quick_gelu');
    enc = await ClipTextEncoder.open(join(DIR, 'model.safetensors'), cfg, { threads: 1 });
    const ids = readNpy(join(DIR, 'input_ids.npy')) as Tensor<'int64'>;
    const got = await enc.encode(ids);
    const err = maxAbsDiff(got, readNpy(join(DIR, 'last_hidden_state.npy')));
    console.log(`CLIP text last_hidden_state max abs ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    // a prefix of the prompt gives the same states for its tokens (the mask is causal)
    const [, T] = ids.dims;
    const D = cfg.hidden_size;
    const head = await enc.encode({ dtype: 'int64', dims: [2, 5], data: BigInt64Array.from([0, 1, 2, 3, 4, T, T + 1, T + 2, T + 3, T + 4].map((j) => ids.data[j])) });
    for (let bi = 0; bi < 2; bi++) {
      for (let t = 0; t < 5; t++) {
        for (let d = 0; d < D; d++) expect(Math.abs(head.data[(bi * 5 + t) * D + d] - got.data[(bi * T + t) * D + d])).toBeLessThan(1e-5);
      }
    }
  });

  it('ViT-L/14 text tower shape: 123.06M parameters in 196 tensors; refuses ids outside the vocabulary', async () => {
    const p = clipTextParams(CLIP_VIT_L14_TEXT);
    expect(p.size).toBe(196);
    expect([...p.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)).toBe(123_060_480);
    const V = enc!.config.vocab_size;
    await expect(enc!.encode({ dtype: 'int64', dims: [1, 2], data: BigInt64Array.from([1n, BigInt(V)]) })).rejects.toThrow(`token id ${V} outside [0, ${V})`);
  });
});
