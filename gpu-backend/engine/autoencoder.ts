// The KL autoencoder on ONNX Runtime: FrozenAutoencoderKL.decode(z) and encode_moments(x) of the official
// libs/autoencoder.py, from autoencoder_kl.pth (or its safetensors conversion) read directly. Each part is built only
// when opened, reading only its own tensors.
import * as ort from 'onnxruntime-node';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { type AutoencoderConfig, type AutoencoderPart, autoencoderParams, buildAutoencoder, OFFICIAL_AUTOENCODER } from '../model/build/autoencoder.ts';
import { openTensorFile, tensorProblems } from '../model/tensorFile.ts';
import { createSession, type EngineSessionOptions } from './session.ts';

export interface AutoencoderOptions extends EngineSessionOptions {
  /** default: the configuration of autoencoder_kl.pth (libs/autoencoder.get_model) */
  config?: AutoencoderConfig;
  /** default ['decoder'] */
  parts?: AutoencoderPart[];
}

export class Autoencoder {
  readonly config: AutoencoderConfig;
  #sessions: Map<AutoencoderPart, ort.InferenceSession>;

  private constructor(config: AutoencoderConfig, sessions: Map<AutoencoderPart, ort.InferenceSession>) {
    this.config = config;
    this.#sessions = sessions;
  }

  static async open(weightsPath: string, opts: AutoencoderOptions = {}): Promise<Autoencoder> {
    const config = opts.config ?? OFFICIAL_AUTOENCODER;
    const file = openTensorFile(weightsPath);
    const sessions = new Map<AutoencoderPart, ort.InferenceSession>();
    try {
      const problems = tensorProblems(file, autoencoderParams(config));
      if (problems.length) throw new Error(`autoencoder weights ${weightsPath} do not match the autoencoder configuration: ${problems.join('; ')}`);
      for (const part of opts.parts ?? ['decoder']) {
        sessions.set(part, await createSession(buildAutoencoder(config, part, (n) => file.readFloat32(n)), opts));
      }
    } catch (e) {
      for (const s of sessions.values()) await s.release();
      throw e;
    } finally {
      file.close();
    }
    return new Autoencoder(config, sessions);
  }

  /** FrozenAutoencoderKL.decode(z): z [B, embed_dim, h, w] (divided by scale_factor inside) -> [B, out_ch, 8h, 8w] */
  decode(z: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    return this.#run('decoder', 'z', this.config.embed_dim, z, 'x');
  }

  /** encode_moments(x): x [B, in_channels, H, W] in [-1, 1] -> [B, 2 embed_dim, H/8, W/8] (mean, logvar) */
  encodeMoments(x: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    return this.#run('encoder', 'x', this.config.in_channels, x, 'moments');
  }

  /**
   * FrozenAutoencoderKL.encode(x) with its standard-normal draw given: scale_factor · (mean + exp(0.5 · clamp(logvar,
   * −30, 20)) · noise), in float32 like torch; noise is [B, embed_dim, H/8, W/8].
   */
  async encode(x: Tensor<'float32'>, noise: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const m = await this.encodeMoments(x);
    const [B, C2, h, w] = m.dims;
    const C = C2 / 2;
    if (noise.dims.join(',') !== [B, C, h, w].join(',')) {
      throw new Error(`autoencoder encode: noise has shape [${noise.dims.join(',')}], expected [${[B, C, h, w].join(',')}]`);
    }
    const f = Math.fround;
    const scale = f(this.config.scale_factor);
    const hw = h * w;
    const z = new Float32Array(B * C * hw);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const mean = (b * C2 + c) * hw;
        const logvar = (b * C2 + C + c) * hw;
        const o = (b * C + c) * hw;
        for (let i = 0; i < hw; i++) {
          const std = f(Math.exp(f(0.5 * Math.min(20, Math.max(-30, m.data[logvar + i])))));
          z[o + i] = f(scale * f(m.data[mean + i] + f(std * noise.data[o + i])));
        }
      }
    }
    return float32([B, C, h, w], z);
  }

  async #run(part: AutoencoderPart, input: string, channels: number, t: Tensor<'float32'>, output: string): Promise<Tensor<'float32'>> {
    const s = this.#sessions.get(part);
    if (!s) throw new Error(`autoencoder: the ${part} was not opened (parts option)`);
    if (t.dims.length !== 4 || t.dims[1] !== channels) {
      throw new Error(`autoencoder ${part}: input has shape [${t.dims.join(',')}], expected [B,${channels},H,W]`);
    }
    const out = (await s.run({ [input]: new ort.Tensor('float32', t.data, t.dims) }))[output];
    return float32([...out.dims], out.data as Float32Array);
  }

  async release(): Promise<void> {
    for (const s of this.#sessions.values()) await s.release();
    this.#sessions.clear();
  }
}
