// The trained shapes model's text encoder as an ONNX graph, built with the project's graph builder from the tensors
// train/export.py writes (the encoder is trained jointly with the U-ViT): word ids → LayerNorm(token embedding +
// learned position embedding).
import { GraphBuilder, f } from '../../onnx/graph.ts';
import { DataType } from '../../onnx/onnx.ts';
import { SafetensorsFile } from '../../model/safetensors.ts';

export interface WordTextEncoderSpec {
  /** safetensors with tok_emb [V, dim], pos_emb [n, dim], ln.weight [dim], ln.bias [dim] */
  tensors: string;
  numTokens: number;
  dim: number;
  /** vocabulary size the tokenizer uses */
  vocab: number;
}

/** input_ids [B, n] int64 → last_hidden_state [B, n, dim] = LayerNorm(tok_emb[ids] + pos_emb), eps 1e-5. */
export function buildWordTextEncoder(spec: WordTextEncoderSpec): Uint8Array {
  const { numTokens: n, dim: c, vocab: V } = spec;
  const st = SafetensorsFile.open(spec.tensors);
  try {
    const read = (name: string, shape: number[]) => {
      if (!st.has(name)) throw new Error(`text encoder tensors ${spec.tensors}: no tensor "${name}"`);
      const got = st.info(name).shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
        throw new Error(`text encoder tensors ${spec.tensors}: "${name}" is [${got.join(',')}], expected [${shape.join(',')}]`);
      }
      return st.readFloat32(name);
    };
    const g = new GraphBuilder('word_text_encoder', 17);
    const ids = g.input('input_ids', DataType.INT64, ['B', n]);
    const emb = g.op('Gather', [g.f32('tok_emb', [V, c], read('tok_emb', [V, c])), ids], { axis: 0 });
    const h = g.op('Add', [emb, g.f32('pos_emb', [n, c], read('pos_emb', [n, c]))]);
    const out = g.op('LayerNormalization', [h, g.f32('ln.weight', [c], read('ln.weight', [c])), g.f32('ln.bias', [c], read('ln.bias', [c]))], {
      axis: -1,
      epsilon: f(1e-5),
    });
    g.output(out, 'last_hidden_state', DataType.FLOAT, ['B', n, c]);
    return g.encode();
  } finally {
    st.close();
  }
}
