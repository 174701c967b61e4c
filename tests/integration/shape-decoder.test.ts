// A shapes model whose latent has shape masks (in_chans 6) with the learned shape decoder (group.json
// "build": {"decoder": {"type": "shape-decoder", "weights": …}}): prepareModelFiles builds decoder.onnx from the
// decoder's tensors (again only when they change), the driver's decoder turns [1, 6, 16, 16, 16] latents into 128 RGB
// frames of 128×128, clamped, and the eval's path (npm run eval:prompts) makes clips with it. The U-ViT weights and
// the decoder's tensors are seeded random; the text encoder and vocabulary are the shipped model's.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatentDecoder } from '../../gpu-backend/driver/decoder.ts';
import { fromOrtF32, openSession } from '../../gpu-backend/driver/ort.ts';
import { jobNoise } from '../../gpu-backend/driver/rng.ts';
import { initWeightsToFile } from '../../gpu-backend/model/initWeights.ts';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';
import { prepareModelFiles } from '../../gpu-backend/serve/modelFiles.ts';
import { runEval } from '../../scripts/eval/evalPrompts.ts';
import { writeSeededDecoder } from '../parity/shapeDecoderCheck.ts';

const SHAPES = resolve(import.meta.dirname, '../../models/uvit-t2v-shapes');
const tmp = mkdtempSync(join(tmpdir(), 'uvit-shape-decoder-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** the shipped group.json and model.json with a 6-channel latent, their files in tmp; returns the `name`.json path */
function maskModel(name: string, edit: (group: Record<string, any>) => void = () => {}): string {
  const model = JSON.parse(readFileSync(join(SHAPES, 'model.json'), 'utf8'));
  writeFileSync(join(tmp, 'model.json'), JSON.stringify({ ...model, in_chans: 6 }));
  copyFileSync(join(SHAPES, 'world.json'), join(tmp, 'world.json'));
  const g = JSON.parse(readFileSync(join(SHAPES, 'group.json'), 'utf8'));
  g.model = 'model.json';
  g.weights = 'weights.safetensors';
  g.text_encoder.onnx = 'text_encoder.onnx';
  g.text_encoder.tokenizer.vocab = join(SHAPES, g.text_encoder.tokenizer.vocab);
  g.decoder.onnx = 'decoder.onnx';
  g.engine = { ep: 'cpu', threads: 1 };
  g.build = {
    text_encoder: join(SHAPES, g.build.text_encoder),
    decoder: { type: 'shape-decoder', weights: 'decoder.safetensors', mean: 0.15, std: 2.0 },
  };
  edit(g);
  const path = join(tmp, `${name}.json`);
  writeFileSync(path, JSON.stringify(g, null, 2));
  return path;
}

describe('shape decoder in a group config ("build": {"decoder": {"type": "shape-decoder"}})', () => {
  const config = maskModel('group');
  const cfg = loadGroupConfig(config);
  const weights = join(tmp, 'decoder.safetensors');
  beforeAll(() => {
    initWeightsToFile(cfg.uvit, 1, cfg.weights);
    writeSeededDecoder(weights, { channels: 6, width: 64, mid: 2, spatial: 8, seed: 1 });
  });

  it('prepareModelFiles builds decoder.onnx from the tensors, rewrites it only when they change', () => {
    expect(cfg.build?.decoder).toEqual({ type: 'shape-decoder', weights, mean: 0.15, std: 2 });
    const made = () => Object.fromEntries(prepareModelFiles(cfg).map((f) => [f.path, f.made]));
    expect(made()).toEqual({ [cfg.weights]: false, [cfg.text_encoder.onnx]: true, [cfg.decoder.onnx]: true });
    const first = readFileSync(cfg.decoder.onnx);
    expect(made()[cfg.decoder.onnx]).toBe(false);
    writeSeededDecoder(weights, { channels: 6, width: 64, mid: 2, spatial: 8, seed: 2 });
    expect(made()[cfg.decoder.onnx]).toBe(true);
    expect(readFileSync(cfg.decoder.onnx).equals(first)).toBe(false);
    writeSeededDecoder(weights, { channels: 6, width: 64, mid: 2, spatial: 8, seed: 1 });
    expect(made()[cfg.decoder.onnx]).toBe(true);
    expect(readFileSync(cfg.decoder.onnx).equals(first)).toBe(true);
  });

  it('the driver\'s decoder makes 128 RGB frames of 128×128 from [1, 6, 16, 16, 16], clamped to 0..255', async () => {
    const z = { dtype: 'float32' as const, dims: [1, 6, 16, 16, 16], data: jobNoise(3, [6, 16, 16, 16]).initial };
    const dec = await LatentDecoder.create(cfg.decoder, { ep: 'cpu', device_id: 0, threads: 1 });
    const raw = await openSession(cfg.decoder.onnx, { ep: 'cpu', device_id: 0, threads: 1 }, 'decoder');
    try {
      const [clip] = await dec.decode(z);
      expect([clip.frames.length, clip.width, clip.height]).toEqual([128, 128, 128]);
      const out = fromOrtF32((await raw.run({ latents: new ort.Tensor('float32', z.data, z.dims) })).frames, 'frames');
      expect(out.dims).toEqual([1, 3, 128, 128, 128]);
      // the decoder's output is not clamped; the driver's frames are its values clamped to [0, 1] and rounded
      expect(out.data.some((v) => v < 0) && out.data.some((v) => v > 1)).toBe(true);
      const P = 128 * 128;
      let worst = 0;
      for (const [t, f] of clip.frames.entries()) {
        for (let i = 0; i < P; i++) {
          for (let c = 0; c < 3; c++) {
            const want = Math.round(Math.min(Math.max(out.data[(c * 128 + t) * P + i], 0), 1) * 255);
            worst = Math.max(worst, Math.abs(f[3 * i + c] - want));
          }
        }
      }
      expect(worst).toBe(0);
    } finally {
      await raw.release();
      await dec.release();
    }
  });

  it('the eval\'s path (npm run eval:prompts) makes 16-second clips of 128×128 with it', async () => {
    const c = { prompt: 'a red ball bouncing', colour: 'red', shape: 'ball', motion: 'bouncing', heldOut: false, seed: 4 };
    const { clips } = await runEval({ config, cases: [c], dir: join(tmp, 'eval'), steps: 2 });
    expect(clips.map((k) => [k.frames.length, k.width, k.height])).toEqual([[128, 128, 128]]);
  });

  it('refuses a decoder that does not fit the latent, or a shape decoder without its tensors', () => {
    expect(() => loadGroupConfig(maskModel('fixed', (g) => { g.build.decoder = { type: 'linear-interpolation', mean: 0.15, std: 2 }; })))
      .toThrow(/the linear-interpolation decoder takes RGB latents \(in_chans 3\), the model's have 6 channels/);
    expect(() => loadGroupConfig(maskModel('reads-more', (g) => { g.build.decoder.channels = 8; })))
      .toThrow(/build\.decoder\.channels 8 is more than the model's in_chans 6/);
    expect(() => loadGroupConfig(maskModel('no-weights', (g) => { delete g.build.decoder.weights; }))).toThrow(/build\.decoder\.weights/);
    expect(() => loadGroupConfig(maskModel('vae', (g) => { g.build.decoder.type = 'vae'; }))).toThrow(/build\.decoder\.type/);
    const missing = loadGroupConfig(maskModel('missing', (g) => { g.build.decoder.weights = 'nope.safetensors'; g.decoder.onnx = 'other.onnx'; }));
    expect(() => prepareModelFiles(missing)).toThrow(/cannot open safetensors file .*nope\.safetensors/);
    expect(existsSync(join(tmp, 'other.onnx'))).toBe(false);
  });
});
