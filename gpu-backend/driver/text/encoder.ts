// Prompt → context [B, n, clip_dim]: a tokenizer plus an ONNX text encoder, both chosen by config.
// The demo ships a byte-level tokenizer and a small seeded, UNTRAINED encoder (see demo/models.ts); a real CLIP text
// encoder exported to ONNX (input_ids [B,77] int64 → last_hidden_state [B,77,768]) with its BPE tokenizer plugs in by
// config, as U-ViT's mscoco model expects (docs/model.md §5.5: raw last_hidden_state, empty string for the uncond branch).
// The trained shapes model takes a word tokenizer over its fixed vocabulary (driver/text/wordEncoder.ts).
import type * as ort from 'onnxruntime-node';
import * as ortRt from 'onnxruntime-node';
import * as z from 'zod';
import type { Tensor } from '../../../shared/tensor.ts';
import { EpConfigSchema, type EpConfig, fromOrtF32, openSession } from '../ort.ts';
import { ClipBpeTokenizer } from './clip.ts';
import { readFileSync } from 'node:fs';
import { ByteTokenizer, type Tokenizer, WordTokenizer } from './tokenizer.ts';

export const TokenizerConfigSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('bytes') }).strict(),
  z
    .object({
      type: z.literal('clip-bpe'),
      /** Hugging Face CLIPTokenizer files */
      vocab: z.string().describe('vocab.json'),
      merges: z.string().describe('merges.txt'),
      /** pad id; HF openai/clip-vit-large-patch14 pads with <|endoftext|> (49407) */
      pad_id: z.number().int().min(0).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('words'),
      /** JSON array of words; index = token id; must hold "<pad>" and "<unk>" */
      vocab: z.string().describe('vocab.json'),
    })
    .strict(),
]);

export const TextEncoderConfigSchema = z
  .object({
    onnx: z.string().min(1),
    tokenizer: TokenizerConfigSchema,
    /** n: tokens per prompt; must equal the model's num_clip_token */
    num_tokens: z.number().int().min(1),
    /** must equal the model's clip_dim */
    dim: z.number().int().min(1),
    input: z.string().default('input_ids'),
    output: z.string().default('last_hidden_state'),
    ids_dtype: z.enum(['int64', 'int32']).default('int64'),
    ep: EpConfigSchema.optional(),
  })
  .strict();
export type TextEncoderConfig = z.infer<typeof TextEncoderConfigSchema>;

export function makeTokenizer(cfg: TextEncoderConfig): Tokenizer {
  switch (cfg.tokenizer.type) {
    case 'bytes':
      return new ByteTokenizer(cfg.num_tokens);
    case 'clip-bpe':
      return ClipBpeTokenizer.fromFiles(cfg.tokenizer.vocab, cfg.tokenizer.merges, cfg.num_tokens, cfg.tokenizer.pad_id);
    case 'words':
      return new WordTokenizer(readVocab(cfg.tokenizer.vocab), cfg.num_tokens);
  }
}

/** a word tokenizer's vocabulary file: a JSON array of distinct strings */
export function readVocab(path: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`word vocabulary ${path}: ${(e as Error).message}`);
  }
  if (!Array.isArray(v) || !v.every((w) => typeof w === 'string')) throw new Error(`word vocabulary ${path}: not a JSON array of strings`);
  return v;
}

export class PromptEncoder {
  readonly tokenizer: Tokenizer;
  readonly cfg: TextEncoderConfig;
  private readonly session: ort.InferenceSession;
  private readonly useMask: boolean;

  private constructor(cfg: TextEncoderConfig, tokenizer: Tokenizer, session: ort.InferenceSession) {
    this.cfg = cfg;
    this.tokenizer = tokenizer;
    this.session = session;
    if (!session.inputNames.includes(cfg.input)) {
      throw new Error(`text encoder ${cfg.onnx}: no input "${cfg.input}" (inputs: ${session.inputNames.join(', ')})`);
    }
    if (!session.outputNames.includes(cfg.output)) {
      throw new Error(`text encoder ${cfg.onnx}: no output "${cfg.output}" (outputs: ${session.outputNames.join(', ')})`);
    }
    // HF CLIP exports often also take attention_mask; feed all ones (U-ViT's CLIP embedder attends to every position).
    this.useMask = session.inputNames.includes('attention_mask');
  }

  static async create(cfg: TextEncoderConfig, ep?: EpConfig): Promise<PromptEncoder> {
    const tokenizer = makeTokenizer(cfg);
    const session = await openSession(cfg.onnx, ep ?? cfg.ep, 'text encoder');
    return new PromptEncoder(cfg, tokenizer, session);
  }

  /** token ids [B, n] */
  tokenize(prompts: string[]): Tensor<'int64'> {
    const n = this.tokenizer.length;
    const data = new BigInt64Array(prompts.length * n);
    prompts.forEach((p, b) => {
      const ids = this.tokenizer.encode(p);
      if (ids.length !== n) throw new Error(`tokenizer returned ${ids.length} ids for a prompt, expected ${n}`);
      for (let i = 0; i < n; i++) data[b * n + i] = BigInt(ids[i]);
    });
    return { dtype: 'int64', dims: [prompts.length, n], data };
  }

  /** context [B, n, dim] for the prompts (use [''] for the unconditional branch) */
  async encode(prompts: string[]): Promise<Tensor<'float32'>> {
    if (!prompts.length) throw new Error('text encoder: no prompts');
    const ids = this.tokenize(prompts);
    const dims = ids.dims;
    const idsTensor =
      this.cfg.ids_dtype === 'int64'
        ? new ortRt.Tensor('int64', ids.data, dims)
        : new ortRt.Tensor('int32', Int32Array.from(ids.data, (v) => Number(v)), dims);
    const feeds: Record<string, ort.Tensor> = { [this.cfg.input]: idsTensor };
    if (this.useMask) {
      feeds.attention_mask =
        this.cfg.ids_dtype === 'int64'
          ? new ortRt.Tensor('int64', new BigInt64Array(ids.data.length).fill(1n), dims)
          : new ortRt.Tensor('int32', new Int32Array(ids.data.length).fill(1), dims);
    }
    const out = await this.session.run(feeds, [this.cfg.output]);
    const t = fromOrtF32(out[this.cfg.output], `text encoder output ${this.cfg.output}`);
    const want = [prompts.length, this.cfg.num_tokens, this.cfg.dim];
    if (t.dims.length !== 3 || t.dims.some((d, i) => d !== want[i])) {
      throw new Error(`text encoder ${this.cfg.onnx}: output [${t.dims.join(',')}], expected [${want.join(',')}]`);
    }
    return { dtype: 'float32', dims: [...t.dims], data: new Float32Array(t.data) };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
