// The word tokenizer of the trained shapes model and the group config's `build` section.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WordTokenizer } from '../../gpu-backend/driver/text/tokenizer.ts';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';

const VOCAB = ['<pad>', '<unk>', 'a', 'red', 'ball', 'moving', 'left'];
const tmp = mkdtempSync(join(tmpdir(), 'uvit-words-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('WordTokenizer', () => {
  it('lower-cases, splits on anything but a-z, maps unknown words to <unk>, pads and truncates', () => {
    const t = new WordTokenizer(VOCAB, 6);
    expect(t.encode('A red BALL, moving-left!')).toEqual([2, 3, 4, 5, 6, 0]);
    expect(t.encode('a purple ball')).toEqual([2, 1, 4, 0, 0, 0]);
    expect(t.encode('')).toEqual([0, 0, 0, 0, 0, 0]);
    expect(t.encode('a a a a a a a red')).toEqual([2, 2, 2, 2, 2, 2]);
    expect(t.encode('red2ball')).toEqual([3, 4, 0, 0, 0, 0]);
    expect(t.vocabSize).toBe(7);
  });

  it('refuses a vocabulary without <pad> / <unk> or with duplicates', () => {
    expect(() => new WordTokenizer(['<unk>', 'a'], 4)).toThrow(/no "<pad>"/);
    expect(() => new WordTokenizer(['<pad>', 'a'], 4)).toThrow(/no "<unk>"/);
    expect(() => new WordTokenizer(['<pad>', '<unk>', 'a', 'a'], 4)).toThrow(/duplicate/);
    expect(() => new WordTokenizer(VOCAB, 0)).toThrow(/positive integer/);
  });
});

describe('group config build section', () => {
  const shipped = resolve(import.meta.dirname, '../../models/uvit-t2v-shapes/group.json');
  it('resolves the built model paths relative to the config', () => {
    const c = loadGroupConfig(shipped);
    expect(c.build?.text_encoder).toBe(resolve(import.meta.dirname, '../../models/uvit-t2v-shapes/text_encoder.safetensors'));
    expect(c.text_encoder.tokenizer).toEqual({ type: 'words', vocab: resolve(import.meta.dirname, '../../models/uvit-t2v-shapes/vocab.json') });
  });
  it('refuses "demo" seeds together with "build"', () => {
    const c = JSON.parse(readFileSync(shipped, 'utf8'));
    const bad = join(tmp, 'both.json');
    writeFileSync(bad, JSON.stringify({ ...c, model: join(resolve(shipped, '..'), 'model.json'), demo: { weights_seed: 0, text_encoder_seed: 1, decoder_seed: 2 } }));
    expect(() => loadGroupConfig(bad)).toThrow(/"demo" \(seeded random files\) and "build" \(a trained model\) exclude each other/);
  });
});
