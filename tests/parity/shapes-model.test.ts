// The shipped trained model (models/uvit-t2v-shapes) against the PyTorch training model (train/model.py), with the
// references train/parity.py wrote from the same model files: the word tokenizer's ids, the text encoder built from
// the committed tensors, one `uvit forward` of the U-ViT (whole and split into 2 stages, <= 1e-4 max abs), and the
// decoder the model ships: the fixed interpolation decoder against torch's trilinear interpolation (half-pixel
// centres), or the shape decoder built from its committed tensors against train/decoder.py's ShapeDecoder.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { main } from '../../gpu-backend/cli/main.ts';
import { buildInterpolationDecoder } from '../../gpu-backend/driver/interpolationDecoder.ts';
import { fromOrtF32, openSession } from '../../gpu-backend/driver/ort.ts';
import { makeTokenizer, PromptEncoder } from '../../gpu-backend/driver/text/encoder.ts';
import { WordTokenizer } from '../../gpu-backend/driver/text/tokenizer.ts';
import { buildWordTextEncoder } from '../../gpu-backend/driver/text/wordEncoder.ts';
import { readNpy, writeNpy } from '../../gpu-backend/model/npy.ts';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';
import { maxAbsDiff } from './referenceUtil.ts';
import { shapeDecoderMaxAbs } from './shapeDecoderCheck.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MODEL = join(ROOT, 'models/uvit-t2v-shapes');
const REF = join(ROOT, 'tests/fixtures/shapes');
const ref = (f: string) => readNpy(join(REF, f));
const cfg = loadGroupConfig(join(MODEL, 'group.json'));
const prompts = JSON.parse(readFileSync(join(REF, 'prompts.json'), 'utf8')) as string[];
const tmp = mkdtempSync(join(tmpdir(), 'uvit-shapes-'));
/** the output frames of decoder_frames.npy (train/parity.py) */
const PARITY_FRAMES = [0, 5, 10, 15];
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('shipped shapes model = PyTorch training model', () => {
  it('word tokenizer: the same ids as train/world.py (case, punctuation, unknown words, padding)', () => {
    const tok = makeTokenizer(cfg.text_encoder);
    const ids = ref('ids.npy');
    const n = cfg.text_encoder.num_tokens;
    prompts.forEach((p, b) => expect(tok.encode(p), p).toEqual(Array.from(ids.data.slice(b * n, (b + 1) * n), Number)));
  });

  it('text encoder built from the committed tensors = the trained encoder (<= 1e-5)', async () => {
    const tok = makeTokenizer(cfg.text_encoder) as WordTokenizer;
    const onnx = join(tmp, 'text_encoder.onnx');
    writeFileSync(onnx, buildWordTextEncoder({ tensors: cfg.build!.text_encoder, numTokens: 12, dim: 64, vocab: tok.vocabSize }));
    const enc = await PromptEncoder.create({ ...cfg.text_encoder, onnx });
    try {
      const got = await enc.encode(prompts);
      const d = maxAbsDiff(got, ref('context.npy'));
      expect(d).toBeLessThanOrEqual(1e-5);
    } finally {
      await enc.release();
    }
  });

  it('uvit forward on the trained weights = the PyTorch forward (<= 1e-4), whole and in 2 stages', async () => {
    const ctx = ref('context.npy') as Tensor<'float32'>;
    const [, n, c] = ctx.dims;
    writeNpy(join(tmp, 'ctx.npy'), { dtype: 'float32', dims: [2, n, c], data: ctx.data.slice(0, 2 * n * c) });
    const want = ref('out.npy');
    for (const extra of [[], ['--stages', '2']]) {
      const out = join(tmp, `out${extra.length}.npy`);
      let err = '';
      const code = await main(
        ['forward', '--config', cfg.model, '--weights', cfg.weights, '--x', join(REF, 'x.npy'), '--t', join(REF, 't.npy'),
          '--context', join(tmp, 'ctx.npy'), '--out', out, '--threads', '1', ...extra],
        { stdout: () => {}, stderr: (t) => void (err += t) },
      );
      expect(code, err).toBe(0);
      const d = maxAbsDiff(readNpy(out), want);
      expect(d, extra.join(' ') || 'whole').toBeLessThanOrEqual(1e-4);
    }
  });

  // train/parity.py writes z.npy, decoded.npy for the fixed decoder (also the shape decoder's first term) and
  // decoder_z.npy, decoder_frames.npy for the shipped shape decoder
  const decoder = cfg.build!.decoder;
  it('interpolation decoder = torch trilinear interpolation (align_corners=False), then mean + std · x', async () => {
    const { mean, std } = decoder;
    const s = await openSession(buildInterpolationDecoder({ channels: 3, size: 4, temporal: 8, spatial: 4, mean, std }), undefined, 'decoder');
    try {
      const z = ref('z.npy') as Tensor<'float32'>;
      const out = await s.run({ latents: new ort.Tensor('float32', z.data, z.dims) });
      const d = maxAbsDiff(fromOrtF32(out.frames, 'frames'), ref('decoded.npy'));
      expect(d).toBeLessThanOrEqual(1e-6);
    } finally {
      await s.release();
    }
  });

  it('shape decoder built from the committed tensors = ShapeDecoder.clip (<= 1e-4)', async () => {
    if (decoder.type !== 'shape-decoder') throw new Error(`the shipped model's decoder is ${decoder.type}, expected shape-decoder`);
    const { mean, std, weights } = decoder;
    const z = ref('decoder_z.npy') as Tensor<'float32'>;
    const spec = { weights, channels: cfg.uvit.in_chans, size: cfg.uvit.img_size, temporal: cfg.decoder.temporal, spatial: cfg.decoder.spatial, mean, std };
    const d = await shapeDecoderMaxAbs(spec, z, ref('decoder_frames.npy') as Tensor<'float32'>, PARITY_FRAMES);
    expect(d).toBeLessThanOrEqual(1e-4);
  });
});
