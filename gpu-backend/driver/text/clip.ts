// CLIP byte-level BPE tokenizer (OpenAI CLIP / Hugging Face CLIPTokenizer files vocab.json + merges.txt), for plugging
// a real CLIP text encoder in. Follows OpenAI's simple_tokenizer without ftfy: whitespace collapsed, lower-cased, the
// CLIP regex split, bytes→unicode map, BPE with '</w>' word ends; then <|startoftext|> ids… <|endoftext|>, truncated to
// `length` and padded with `pad_id` (default <|endoftext|>, as HF's openai/clip-vit-large-patch14 tokenizer pads).
import { readFileSync } from 'node:fs';
import type { Tokenizer } from './tokenizer.ts';

function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array<string>(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i])));
  return map;
}

const PAT = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

export class ClipBpeTokenizer implements Tokenizer {
  readonly length: number;
  private readonly vocab: Map<string, number>;
  private readonly ranks: Map<string, number>;
  private readonly byteMap = bytesToUnicode();
  private readonly cache = new Map<string, string[]>();
  private readonly bos: number;
  private readonly eos: number;
  private readonly pad: number;

  constructor(vocab: Record<string, number>, merges: string[], length: number, padId?: number) {
    if (!Number.isInteger(length) || length < 2) throw new Error(`clip tokenizer: length must be >= 2, got ${length}`);
    this.length = length;
    this.vocab = new Map(Object.entries(vocab));
    this.ranks = new Map();
    merges.forEach((m, i) => this.ranks.set(m, i));
    const bos = this.vocab.get('<|startoftext|>');
    const eos = this.vocab.get('<|endoftext|>');
    if (bos === undefined || eos === undefined) throw new Error('clip tokenizer: vocab lacks <|startoftext|> or <|endoftext|>');
    this.bos = bos;
    this.eos = eos;
    this.pad = padId ?? eos;
  }

  static fromFiles(vocabPath: string, mergesPath: string, length: number, padId?: number): ClipBpeTokenizer {
    const vocab = JSON.parse(readFileSync(vocabPath, 'utf8')) as Record<string, number>;
    const merges = readFileSync(mergesPath, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#version'));
    return new ClipBpeTokenizer(vocab, merges, length, padId);
  }

  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    const chars = [...token];
    let word = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = word[best];
      const b = word[best + 1];
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i += 2;
        } else next.push(word[i++]);
      }
      word = next;
    }
    this.cache.set(token, word);
    return word;
  }

  encode(text: string): number[] {
    const clean = text.replace(/\s+/g, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of clean.matchAll(PAT)) {
      const bytes = new globalThis.TextEncoder().encode(m[0]);
      const mapped = Array.from(bytes, (b) => this.byteMap[b]).join('');
      for (const piece of this.bpe(mapped)) {
        const id = this.vocab.get(piece);
        if (id === undefined) throw new Error(`clip tokenizer: BPE piece ${JSON.stringify(piece)} not in vocab`);
        ids.push(id);
      }
    }
    const body = ids.slice(0, this.length - 2);
    const out = [this.bos, ...body, this.eos];
    while (out.length < this.length) out.push(this.pad);
    return out;
  }
}
