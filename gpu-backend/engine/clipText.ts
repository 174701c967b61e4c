// CLIP text encoder on ONNX Runtime from a Hugging Face checkpoint (model.safetensors or .pth + config.json): the
// ONNX graph is built in memory by model/build/clipText.ts, reading only the text tower's tensors.
import * as ort from 'onnxruntime-node';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { buildClipText, type ClipTextConfig, clipTextParams, clipTextPrefix } from '../model/build/clipText.ts';
import { openTensorFile, tensorProblems, type TensorReader } from '../model/tensorFile.ts';
import { createSession, type EngineSessionOptions } from './session.ts';

export class ClipTextEncoder {
  readonly config: ClipTextConfig;
  #session: ort.InferenceSession;

  private constructor(config: ClipTextConfig, session: ort.InferenceSession) {
    this.config = config;
    this.#session = session;
  }

  static async open(weightsPath: string, config: ClipTextConfig, opts: EngineSessionOptions = {}): Promise<ClipTextEncoder> {
    const file = openTensorFile(weightsPath);
    try {
      const prefix = checkClipText(file, config);
      const model = buildClipText(config, (n) => file.readFloat32(prefix + n));
      return new ClipTextEncoder(config, await createSession(model, opts));
    } finally {
      file.close();
    }
  }

  /** token ids [B, T] (T <= max_position_embeddings) -> last_hidden_state [B, T, hidden_size] */
  async encode(ids: Tensor<'int64'>): Promise<Tensor<'float32'>> {
    if (ids.dims.length !== 2 || ids.dims[1] > this.config.max_position_embeddings) {
      throw new Error(`CLIP text encoder: input_ids [${ids.dims.join(',')}], expected [B, <= ${this.config.max_position_embeddings}]`);
    }
    for (const v of ids.data) {
      if (v < 0n || v >= BigInt(this.config.vocab_size)) throw new Error(`CLIP text encoder: token id ${v} outside [0, ${this.config.vocab_size})`);
    }
    const out = (await this.#session.run({ input_ids: new ort.Tensor('int64', ids.data, ids.dims) })).last_hidden_state;
    return float32([...out.dims], out.data as Float32Array);
  }

  release(): Promise<void> {
    return this.#session.release();
  }
}

/** Checks the text tower's tensors against the config and returns their name prefix ("text_model." or ""). */
export function checkClipText(file: TensorReader, config: ClipTextConfig): string {
  const prefix = clipTextPrefix(file);
  const expected = clipTextParams(config);
  // only the text tower is checked: a CLIPModel file also holds the vision tower and the projections
  const tower = file.names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)).filter((n) => expected.has(n));
  const problems = tensorProblems({ names: tower, has: (n) => file.has(prefix + n), info: (n) => file.info(prefix + n) }, expected);
  if (problems.length) throw new Error(`CLIP text weights ${file.path} do not match the CLIP config: ${problems.join('; ')}`);
  return prefix;
}
