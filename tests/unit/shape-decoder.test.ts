// The learned shape decoder built from seeded tensors (no committed file): the ONNX graph against a plain-loop
// ShapeDecoder.clip, the fixed decoder it starts as (conv_out zero), the width and depth read off the file, F16
// tensors, and a precise error for each malformed file. Its parity with PyTorch is tests/parity/shapes-model.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { f16ToF32, f32ToF16 } from '../../shared/halfFloat.ts';
import { DecoderConfigSchema, LatentDecoder } from '../../gpu-backend/driver/decoder.ts';
import { buildInterpolationDecoder } from '../../gpu-backend/driver/interpolationDecoder.ts';
import { fromOrtF32, openSession } from '../../gpu-backend/driver/ort.ts';
import { jobNoise } from '../../gpu-backend/driver/rng.ts';
import { buildShapeDecoder } from '../../gpu-backend/driver/shapeDecoder.ts';
import { writeSafetensors, type WriteTensor } from '../../gpu-backend/model/safetensors.ts';
import { maxAbsDiff } from '../parity/referenceUtil.ts';
import { pickFrames, referenceShapeDecoder, runShapeDecoder, seededDecoderTensors, shapeDecoderMaxAbs, writeSeededDecoder } from '../parity/shapeDecoderCheck.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-shape-decoder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const latents = (seed: number, dims: number[], scale = 0.5): Tensor<'float32'> =>
  ({ dtype: 'float32', dims, data: jobNoise(seed, dims.slice(1), dims[0]).initial.map((v) => v * scale) });
const norm = { mean: 0.15, std: 2 };

describe('shape decoder (driver/shapeDecoder.ts)', () => {
  it.each([
    { name: 'C 6, W 8, M 2, ×8 time and space, B 2', channels: 6, width: 8, mid: 2, temporal: 8, spatial: 8, dims: [2, 6, 2, 4, 4] },
    { name: 'C 3, W 5, M 0, ×3 time, ×2 space, F 4', channels: 3, width: 5, mid: 0, temporal: 3, spatial: 2, dims: [1, 3, 4, 6, 6] },
    { name: 'C 4, W 4, M 3, ×1 time, ×4 space', channels: 4, width: 4, mid: 3, temporal: 1, spatial: 4, dims: [1, 4, 3, 5, 5] },
  ])('= a plain-loop ShapeDecoder.clip ($name), width and depth from the file', async (c) => {
    const weights = join(dir, `ref-${c.channels}-${c.mid}.safetensors`);
    const t = writeSeededDecoder(weights, { ...c, seed: 3 });
    const z = latents(7, c.dims);
    const o = { temporal: c.temporal, spatial: c.spatial, ...norm };
    const want = referenceShapeDecoder(t, z, o);
    const spec = { weights, channels: c.channels, size: c.dims[3], ...o };
    const got = await runShapeDecoder(spec, z);
    expect(got.dims).toEqual([c.dims[0], 3, c.temporal * c.dims[2], c.spatial * c.dims[3], c.spatial * c.dims[3]]);
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-5);
    // the parity tests' check, on some frames only
    expect(await shapeDecoderMaxAbs(spec, z, pickFrames(want, [0, 2]), [0, 2])).toBeLessThanOrEqual(1e-5);
  });

  it('with conv_out zero (how training starts) it is the fixed interpolation decoder of the RGB channels (<= 1e-6)', async () => {
    const weights = join(dir, 'zero-out.safetensors');
    writeSeededDecoder(weights, { channels: 6, width: 8, mid: 2, spatial: 8, seed: 4, zeroOut: true });
    const z = latents(11, [1, 6, 3, 16, 16]);
    const got = await runShapeDecoder({ weights, channels: 6, size: 16, temporal: 8, spatial: 8, ...norm }, z);
    const rgb = z.data.slice(0, 3 * 3 * 256);
    const fixed = await openSession(buildInterpolationDecoder({ channels: 3, size: 16, temporal: 8, spatial: 8, ...norm }), undefined, 'decoder');
    try {
      const out = await fixed.run({ latents: new ort.Tensor('float32', rgb, [1, 3, 3, 16, 16]) });
      expect(maxAbsDiff(got, fromOrtF32(out.frames, 'frames'))).toBeLessThanOrEqual(1e-6);
    } finally {
      await fixed.release();
    }
  });

  it('reads F16 tensors as float32 (the same frames as their values in F32)', async () => {
    const t16 = seededDecoderTensors({ channels: 6, width: 8, mid: 1, spatial: 4, seed: 5, dtype: 'F16' });
    const t32 = new Map([...t16].map(([k, v]): [string, WriteTensor] => [k, { ...v, dtype: 'F32', data: f16ToF32(f32ToF16(v.data)) }]));
    writeSafetensors(join(dir, 'h.safetensors'), t16);
    writeSafetensors(join(dir, 'f.safetensors'), t32);
    const z = latents(2, [1, 6, 2, 4, 4]);
    const spec = { channels: 6, size: 4, temporal: 2, spatial: 4, ...norm };
    const a = await runShapeDecoder({ ...spec, weights: join(dir, 'h.safetensors') }, z);
    const b = await runShapeDecoder({ ...spec, weights: join(dir, 'f.safetensors') }, z);
    expect(maxAbsDiff(a, b)).toBe(0);
  });

  it('reads only the latent\'s first `reads` channels: the motion channels after them change nothing', async () => {
    const weights = join(dir, 'reads.safetensors');
    writeSeededDecoder(weights, { channels: 6, width: 8, mid: 1, spatial: 4, seed: 8 });
    const o = { size: 4, temporal: 2, spatial: 4, ...norm };
    const z8 = latents(12, [2, 8, 3, 4, 4]);
    const per = 3 * 16;
    const z6: Tensor<'float32'> = { dtype: 'float32', dims: [2, 6, 3, 4, 4], data: new Float32Array(2 * 6 * per) };
    for (let b = 0; b < 2; b++) z6.data.set(z8.data.subarray(b * 8 * per, b * 8 * per + 6 * per), b * 6 * per);
    const got = await runShapeDecoder({ ...o, weights, channels: 8, reads: 6 }, z8);
    expect(maxAbsDiff(got, await runShapeDecoder({ ...o, weights, channels: 6 }, z6))).toBe(0);
    expect(() => buildShapeDecoder({ ...o, weights, channels: 8 })).toThrow(/expected \[8,8,3,3\] \(in_chans 8/);
    expect(() => buildShapeDecoder({ ...o, weights, channels: 6, reads: 8 })).toThrow(/reads 3 to in_chans \(6\) latent channels, got 8/);
    expect(() => buildShapeDecoder({ ...o, weights, channels: 8, reads: 2 })).toThrow(/reads 3 to in_chans \(8\) latent channels, got 2/);
  });

  const spec = (weights: string, channels = 6) => ({ weights, channels, size: 16, temporal: 8, spatial: 8, ...norm });
  it.each<[string, (m: Map<string, WriteTensor>) => void, RegExp, number?]>([
    ['latent channels other than the file\'s', () => {}, /"conv_in\.weight" is \[8,6,3,3\], expected \[8,5,3,3\] \(in_chans 5/, 5],
    ['a conv_in that is not 4-D', (m) => m.set('conv_in.weight', { dtype: 'F32', shape: [8, 54], data: new Float32Array(432) }),
      /"conv_in\.weight" is \[8,54\], expected \[W,6,3,3\]/],
    ['no conv_in', (m) => m.delete('conv_in.weight'), /no tensor "conv_in\.weight"/],
    ['a missing bias', (m) => m.delete('conv_mid.1.bias'), /no tensor "conv_mid\.1\.bias"/],
    ['a gap in conv_mid', (m) => { m.delete('conv_mid.0.weight'); m.delete('conv_mid.0.bias'); }, /no tensor "conv_mid\.0\.weight"/],
    ['a tensor a ShapeDecoder has not', (m) => m.set('conv_mid.0.scale', { dtype: 'F32', shape: [8], data: new Float32Array(8) }),
      /unexpected tensor "conv_mid\.0\.scale"/],
    ['a conv_out for another upsampling (×4)', (m) => m.set('conv_out.weight', { dtype: 'F32', shape: [48, 8, 1, 1], data: new Float32Array(384) }),
      /"conv_out\.weight" is \[48,8,1,1\], expected \[192,8,1,1\]/],
    ['a mid conv of another width', (m) => m.set('conv_mid.1.weight', { dtype: 'F32', shape: [8, 4, 3, 3], data: new Float32Array(288) }),
      /"conv_mid\.1\.weight" is \[8,4,3,3\], expected \[8,8,3,3\]/],
    ['a bias of the wrong length', (m) => m.set('conv_out.bias', { dtype: 'F32', shape: [191], data: new Float32Array(191) }),
      /"conv_out\.bias" is \[191\], expected \[192\]/],
    ['BF16', (m) => m.set('conv_mid.0.weight', { ...m.get('conv_mid.0.weight')!, dtype: 'BF16' }), /"conv_mid\.0\.weight" has dtype BF16, expected F32 or F16/],
  ])('refuses a malformed file: %s', (name, edit, msg, channels) => {
    const m = seededDecoderTensors({ channels: 6, width: 8, mid: 2, spatial: 8, seed: 1 });
    edit(m);
    const p = join(dir, `bad-${name.replace(/\W+/g, '-')}.safetensors`);
    writeSafetensors(p, m);
    expect(() => buildShapeDecoder(spec(p, channels))).toThrow(msg);
    expect(() => buildShapeDecoder(spec(p, channels))).toThrow(`shape decoder weights ${p}`);
  });

  it('refuses latents without the 3 RGB channels, and a file that is no safetensors', () => {
    const p = join(dir, 'ok.safetensors');
    writeSeededDecoder(p, { channels: 2, width: 4, mid: 0, spatial: 8, seed: 1 });
    expect(() => buildShapeDecoder(spec(p, 2))).toThrow(/in_chans must be at least 3, got 2/);
    writeFileSync(join(dir, 'junk.safetensors'), 'not a safetensors file');
    expect(() => buildShapeDecoder(spec(join(dir, 'junk.safetensors')))).toThrow(/junk\.safetensors/);
  });

  it('the driver refuses a decoder whose frames are not RGB, at load', async () => {
    const onnx = join(dir, 'six.onnx');
    writeFileSync(onnx, buildInterpolationDecoder({ channels: 6, size: 4, temporal: 2, spatial: 2, ...norm }));
    await expect(LatentDecoder.create(DecoderConfigSchema.parse({ onnx, temporal: 2, spatial: 2 })))
      .rejects.toThrow(/output "frames" is \[B,6,T,8,8\], 6 channels, but frames are RGB: it must give 3/);
  });
});

