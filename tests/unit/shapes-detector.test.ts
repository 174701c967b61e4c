// The eval's clip detector on ground truth: latent clips rendered by the training data generator (train/parity.py),
// decoded to 128 frames of 128x128 by the shipped decoder (the fixed one, or the shape decoder of a latent with shape
// masks) and, for a latent with masks, also by the fixed decoder on its RGB channels alone, must be read back as the
// scene they were drawn from.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { LatentDecoder } from '../../gpu-backend/driver/decoder.ts';
import { buildInterpolationDecoder } from '../../gpu-backend/driver/interpolationDecoder.ts';
import { buildShapeDecoder } from '../../gpu-backend/driver/shapeDecoder.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';
import { observeClip, observeFrame, type Rgb } from '../../scripts/eval/detector.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const REF = join(ROOT, 'tests/fixtures/shapes');
const world = JSON.parse(readFileSync(join(ROOT, 'models/uvit-t2v-shapes/world.json'), 'utf8')) as { colours: Record<string, Rgb> };
const scenes = JSON.parse(readFileSync(join(REF, 'gt.json'), 'utf8')) as { colour: string; shape: string; motion: string }[];
const tmp = mkdtempSync(join(tmpdir(), 'uvit-detector-'));
const cfg = loadGroupConfig(join(ROOT, 'models/uvit-t2v-shapes/group.json'));
const built = cfg.build!.decoder;
const decoders: { name: string; channels: number; decoder: LatentDecoder }[] = [];
beforeAll(async () => {
  const open = async (name: string, channels: number, bytes: Uint8Array) => {
    const onnx = join(tmp, `${name}.onnx`);
    writeFileSync(onnx, bytes);
    const decoder = await LatentDecoder.create({ onnx, layout: 'video', input: 'latents', output: 'frames', temporal: 8, spatial: 8, scale_factor: 1, output_range: '0,1', frames_per_call: 8 });
    decoders.push({ name, channels, decoder });
  };
  const spec = { channels: 3, size: 16, temporal: 8, spatial: 8, mean: built.mean, std: built.std };
  await open('fixed decoder, RGB channels', 3, buildInterpolationDecoder(spec));
  if (built.type === 'shape-decoder') {
    await open('shape decoder', cfg.uvit.in_chans, buildShapeDecoder({ ...spec, channels: cfg.uvit.in_chans, weights: built.weights }));
  }
});
afterAll(async () => {
  for (const d of decoders) await d.decoder.release();
  rmSync(tmp, { recursive: true, force: true });
});

describe('shapes clip detector', () => {
  it('reads every rendered ground-truth clip back as its colour, shape and motion, visible in every frame', async () => {
    const all = readNpy(join(REF, 'gt_latents.npy')) as Tensor<'float32'>;
    const [N, C, F, S] = all.dims;
    const per = C * F * S * S;
    expect(N).toBe(scenes.length);
    expect(decoders.length).toBe(built.type === 'shape-decoder' ? 2 : 1);
    for (const { name, channels, decoder } of decoders) {
      const got = [];
      for (let i = 0; i < N; i++) {
        // the first `channels` channels: a latent with shape masks has RGB first
        const data = all.data.slice(i * per, i * per + channels * F * S * S);
        const [clip] = await decoder.decode({ dtype: 'float32', dims: [1, channels, F, S, S], data });
        expect(clip.frames.length).toBe(128);
        const o = observeClip(clip.frames, clip.width, clip.height, world.colours);
        got.push({ colour: o.colour, shape: o.shape, motion: o.motion, visible: o.visible });
        // one object in every frame; the fixed decoder blends neighbouring latent frames, and where a bouncing object
        // moves fast near the floor the blend shows it twice for a frame or two (2 of 128 in this set)
        expect(o.single, `${name}, clip ${i}`).toBeGreaterThanOrEqual(channels === 3 ? 0.98 : 1);
      }
      expect(got, name).toEqual(scenes.map((s) => ({ colour: s.colour, shape: s.shape, motion: s.motion, visible: 1 })));
    }
  });

  it('reads the colour of a small object from its core, not from its wide blurred edge', () => {
    // a disk of radius 5 with a linear fade to the background out to radius 16: most of the pixels that differ from
    // the background are edge, whose median (about 60 % of the colour) is nearer green than yellow or white
    const W = 128;
    for (const name of ['yellow', 'white'] as const) {
      const c = world.colours[name];
      const frame = new Uint8Array(W * W * 3);
      for (let y = 0; y < W; y++) {
        for (let x = 0; x < W; x++) {
          const k = Math.min(1, Math.max(0, (16 - Math.hypot(x - 64, y - 64)) / 11));
          for (let ch = 0; ch < 3; ch++) frame[(y * W + x) * 3 + ch] = Math.round(k * c[ch]);
        }
      }
      const o = observeFrame(frame, W, W, world.colours);
      expect(o.visible).toBe(true);
      expect(o.colour).toBe(name);
      expect(o.cx).toBeCloseTo(64.5 / W, 2);
    }
  });

  it('counts the separate objects of a frame, joined across the wrapping edges, ignoring specks', () => {
    const W = 128;
    const red = world.colours.red;
    const frame = (disks: [number, number, number][]) => {
      const f = new Uint8Array(W * W * 3);
      for (let y = 0; y < W; y++) {
        for (let x = 0; x < W; x++) {
          // distances on the torus, so a disk near an edge continues on the other side
          const inside = disks.some(([cx, cy, r]) => Math.hypot(Math.min(Math.abs(x - cx), W - Math.abs(x - cx)), Math.min(Math.abs(y - cy), W - Math.abs(y - cy))) <= r);
          if (inside) f.set(red, (y * W + x) * 3);
        }
      }
      return f;
    };
    const objects = (disks: [number, number, number][]) => observeFrame(frame(disks), W, W, world.colours).objects;
    expect(objects([[40, 40, 14]])).toBe(1);
    expect(objects([[30, 40, 12], [90, 80, 12]])).toBe(2);
    expect(objects([[2, 126, 14]])).toBe(1); // split over all four corners
    expect(objects([[40, 40, 14], [100, 100, 3]])).toBe(1); // a speck of ~29 pixels, under 1 % of the frame
    expect(objects([[40, 40, 14], [100, 100, 8]])).toBe(2);
  });

  it('an empty frame and a frame of noise are not a visible object', () => {
    const W = 32;
    expect(observeFrame(new Uint8Array(W * W * 3), W, W, world.colours).visible).toBe(false);
    let s = 1;
    const noise = Uint8Array.from({ length: W * W * 3 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
    expect(observeFrame(noise, W, W, world.colours).visible).toBe(false);
  });
});
