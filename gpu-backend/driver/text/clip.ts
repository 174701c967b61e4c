// CLIP byte-level BPE tokenizer (OpenAI CLIP / Hugging Face CLIPTokenizer files vocab.json + merges.txt), as U-ViT ran
// it (libs/clip.py: transformers' CLIPTokenizer with ftfy installed): cleaning = ftfy.fix_text (the fixes below),
// whitespace collapsed, lower-cased; the CLIP regex split, bytes→unicode map, BPE with '</w>' word ends, the two special
// tokens kept whole; then <|startoftext|> ids… <|endoftext|>, truncated to `length` and padded with `pad_id` (default
// <|endoftext|>, as HF's openai/clip-vit-large-patch14 tokenizer pads).
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

// ftfy 6 fix_text's character fixes that a typed prompt meets (its mojibake repair, fix_encoding, is not reproduced)
const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ', 'ǈ': 'Lj',
  'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj', 'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const HTML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/**
 * ftfy.fix_text for prompts: HTML entities (only when the text has no '<', ftfy's "auto"), terminal escapes and
 * control characters removed, Latin ligatures split, full-width characters made half-width, curly quotes straightened,
 * NFC.
 */
export function fixText(text: string): string {
  let t = text;
  if (!t.includes('<')) {
    t = t.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);/g, (m, e: string) => {
      if (e[0] !== '#') return HTML_ENTITIES[e.toLowerCase()] ?? m;
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    });
  }
  t = t.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  t = t.replace(/[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g, '');
  t = t.replace(/[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g, (c) => LIGATURES[c] ?? c);
  t = t.replace(/[\u3000\uff01-\uffef]/g, (c) => {
    const n = c.normalize('NFKC');
    return n.length === 1 ? n : c;
  });
  t = t.replace(/[\u02bc\u2018-\u201b]/g, "'").replace(/[\u201c-\u201f]/g, '"');
  return t.normalize('NFC');
}

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
    const clean = fixText(text).replace(/\s+/g, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of clean.matchAll(PAT)) {
      if (m[0] === '<|startoftext|>' || m[0] === '<|endoftext|>') {
        ids.push(m[0] === '<|startoftext|>' ? this.bos : this.eos);
        continue;
      }
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
