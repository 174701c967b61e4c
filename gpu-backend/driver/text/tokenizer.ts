// The tokenizer contract of the prompt encoder, and the byte-level tokenizer the demo's text encoder takes (the CLIP
// BPE tokenizer is in clip.ts).
export interface Tokenizer {
  /** tokens per prompt (padded / truncated to this) */
  readonly length: number;
  encode(text: string): number[];
}

/**
 * Byte-level tokenizer: UTF-8 bytes b → id b + 1 (1..256), then id 0 as padding up to `length`; longer prompts are
 * truncated to `length` bytes. Vocabulary size 257. The empty string is all padding.
 */
export class ByteTokenizer implements Tokenizer {
  static readonly VOCAB = 257;
  static readonly PAD = 0;
  readonly length: number;
  constructor(length: number) {
    if (!Number.isInteger(length) || length < 1) throw new Error(`byte tokenizer: length must be a positive integer, got ${length}`);
    this.length = length;
  }
  encode(text: string): number[] {
    const bytes = new globalThis.TextEncoder().encode(text);
    const ids = new Array<number>(this.length).fill(ByteTokenizer.PAD);
    for (let i = 0; i < Math.min(bytes.length, this.length); i++) ids[i] = bytes[i] + 1;
    return ids;
  }
}

/**
 * Word-level tokenizer over a fixed vocabulary (the trained shapes model, train/world.py): the prompt is lower-cased,
 * its runs of letters a–z are the words, each word maps to its index in `vocab` or to `<unk>`, then `<pad>` fills up
 * to `length` (longer prompts are truncated). The empty prompt is all padding: the unconditional context.
 */
export class WordTokenizer implements Tokenizer {
  static readonly PAD = '<pad>';
  static readonly UNK = '<unk>';
  readonly length: number;
  private readonly ids: Map<string, number>;
  private readonly pad: number;
  private readonly unk: number;
  constructor(vocab: readonly string[], length: number) {
    if (!Number.isInteger(length) || length < 1) throw new Error(`word tokenizer: length must be a positive integer, got ${length}`);
    this.ids = new Map(vocab.map((w, i) => [w, i]));
    if (this.ids.size !== vocab.length) throw new Error('word tokenizer: the vocabulary has duplicate words');
    const special = (w: string) => {
      const id = this.ids.get(w);
      if (id === undefined) throw new Error(`word tokenizer: the vocabulary has no "${w}"`);
      return id;
    };
    this.pad = special(WordTokenizer.PAD);
    this.unk = special(WordTokenizer.UNK);
    this.length = length;
  }
  get vocabSize(): number {
    return this.ids.size;
  }
  encode(text: string): number[] {
    const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
    const ids = words.slice(0, this.length).map((w) => this.ids.get(w) ?? this.unk);
    while (ids.length < this.length) ids.push(this.pad);
    return ids;
  }
}
