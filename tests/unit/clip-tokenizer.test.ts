// The CLIP BPE tokenizer against golden ids (tests/fixtures/clip/make_tokenizer.py): a small vocabulary built the way
// CLIP's is, tricky strings, 77 tokens. "official" = what U-ViT ran (transformers' CLIPTokenizer with ftfy),
// "hf" = today's transformers CLIPTokenizer (no ftfy); they differ only where ftfy changes the text.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClipBpeTokenizer, fixText } from '../../gpu-backend/driver/text/clip.ts';

const DIR = resolve(import.meta.dirname, '../fixtures/clip/tokenizer');
const golden = JSON.parse(readFileSync(join(DIR, 'golden.json'), 'utf8')) as Array<{ text: string; official: number[]; hf: number[] }>;
const tok = ClipBpeTokenizer.fromFiles(join(DIR, 'vocab.json'), join(DIR, 'merges.txt'), 77);

describe('CLIP BPE tokenizer: golden ids', () => {
  it.each(golden.map((g) => [JSON.stringify(g.text).slice(0, 50), g] as const))('%s', (_name, g) => {
    const ids = tok.encode(g.text);
    expect(ids).toHaveLength(77);
    expect(ids).toEqual(g.official);
    if (fixText(g.text) === g.text.normalize('NFC')) expect(ids).toEqual(g.hf);
  });

  it('the goldens exercise BPE merges, truncation, padding and the special tokens', () => {
    const eos = tok.encode('')[1];
    expect(tok.encode('')).toEqual([eos - 1, ...new Array(76).fill(eos)]);
    const long = golden.find((g) => g.text.startsWith('word word'))!;
    expect(long.official[76]).toBe(eos);
    expect(long.official.filter((id) => id === eos)).toHaveLength(1); // truncated: no padding, <|endoftext|> last
    expect(golden.filter((g) => g.official.join() !== g.hf.join()).length).toBeGreaterThanOrEqual(4);
    const photo = tok.encode('a photo of a cat.');
    expect(photo.indexOf(eos)).toBeLessThan(8); // merged words: fewer ids than characters
  });
});
