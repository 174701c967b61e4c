// The CLIP text encoder built by the graph builder against Hugging Face CLIPTextModel (the class libs/clip.py uses):
// a seeded small config saved with save_pretrained (tests/fixtures/clip/make.py), last_hidden_state within 1e-4.
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { ClipTextEncoder } from '../../gpu-backend/engine/clipText.ts';
import { CLIP_VIT_L14_TEXT, clipTextParams, readClipTextConfig } from '../../gpu-backend/model/build/clipText.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { maxAbsDiff } from './referenceUtil.ts';

const DIR = resolve(import.meta.dirname, '../fixtures/clip/text');
let enc: ClipTextEncoder | undefined;
afterAll(async () => enc?.release());

describe('CLIP text encoder vs Hugging Face CLIPTextModel', () => {
  it('last_hidden_state of padded prompts within 1e-4 (causal mask, quick_gelu, final LayerNorm)', async () => {
    const cfg = readClipTextConfig(join(DIR, 'config.json'));
    expect(cfg).toMatchObject({ hidden_size: 32, num_hidden_layers: 2, hidden_act: 'quick_gelu', max_position_embeddings: 16 });
    enc = await ClipTextEncoder.open(join(DIR, 'model.safetensors'), cfg, { threads: 1 });
    const ids = readNpy(join(DIR, 'input_ids.npy')) as Tensor<'int64'>;
    const got = await enc.encode(ids);
    const err = maxAbsDiff(got, readNpy(join(DIR, 'last_hidden_state.npy')));
    console.log(`CLIP text last_hidden_state max abs ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    // a prefix of the prompt gives the same states for its tokens (the mask is causal)
    const head = await enc.encode({ dtype: 'int64', dims: [2, 5], data: BigInt64Array.from([0, 1, 2, 3, 4, 16, 17, 18, 19, 20].map((j) => ids.data[j])) });
    const full = got.data;
    for (let bi = 0; bi < 2; bi++) {
      for (let t = 0; t < 5; t++) {
        for (let d = 0; d < 32; d++) expect(Math.abs(head.data[(bi * 5 + t) * 32 + d] - full[(bi * 16 + t) * 32 + d])).toBeLessThan(1e-5);
      }
    }
  });

  it('ViT-L/14 text tower shape: 123.06M parameters in 196 tensors; refuses ids outside the vocabulary', async () => {
    const p = clipTextParams(CLIP_VIT_L14_TEXT);
    expect(p.size).toBe(196);
    expect([...p.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)).toBe(123_060_480);
    await expect(enc!.encode({ dtype: 'int64', dims: [1, 2], data: BigInt64Array.from([1n, 100n]) })).rejects.toThrow(/token id 100 outside \[0, 100\)/);
  });
});
