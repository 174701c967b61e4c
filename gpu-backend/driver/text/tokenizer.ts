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
