// The latent decoder on its own thread: the same frames as on the calling thread, the driver's thread left free while
// it decodes, errors carried back; and the capacity a group takes when none is given.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecoderConfigSchema, LatentDecoder } from '../../gpu-backend/driver/decoder.ts';
import { DecoderThread } from '../../gpu-backend/driver/decodeThread.ts';
import { buildDemoDecoder } from '../../gpu-backend/demo/models.ts';
import { jobNoise } from '../../gpu-backend/driver/rng.ts';
import { defaultCapacity } from '../../gpu-backend/serve/worker.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-decode-thread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('DecoderThread', () => {
  it('gives the frames LatentDecoder gives, keeps the caller\'s latents, and leaves the calling thread free meanwhile', async () => {
    const path = join(dir, 'dec.onnx');
    writeFileSync(path, buildDemoDecoder({ channels: 4, size: 16, temporal: 4, spatial: 8, hidden: 32, seed: 3 }));
    const cfg = DecoderConfigSchema.parse({ onnx: path, temporal: 4, spatial: 8 });
    const here = await LatentDecoder.create(cfg, { ep: 'cpu', device_id: 0, threads: 1 });
    const there = await DecoderThread.create(cfg, { ep: 'cpu', device_id: 0, threads: 1 });
    try {
      const z = { dtype: 'float32' as const, dims: [2, 4, 8, 16, 16], data: jobNoise(9, [4, 8, 16, 16], 2).initial };
      const copy = Float32Array.from(z.data);
      // ticks of this thread's timer during a decode: none while a session runs on this thread
      const timed = async <T>(f: () => Promise<T>) => {
        let ticks = 0;
        const timer = setInterval(() => ticks++, 1);
        const t0 = performance.now();
        const r = await f();
        clearInterval(timer);
        return { r, ticks, ms: performance.now() - t0 };
      };
      const want = await timed(() => here.decode(z, 30));
      const got = await timed(() => there.decode(z, 30));
      expect(got.r).toHaveLength(2);
      expect(got.r[1]).toMatchObject({ width: 128, height: 128 });
      expect(got.r[1].frames).toHaveLength(30);
      for (const b of [0, 1]) expect(got.r[b].frames.map(sha)).toEqual(want.r[b].frames.map(sha));
      expect(Array.from(z.data)).toEqual(Array.from(copy));
      expect(want.ms).toBeGreaterThan(20);
      expect(want.ticks).toBeLessThanOrEqual(2);
      expect(got.ticks).toBeGreaterThan(got.ms / 20);
    } finally {
      await here.release();
      await there.release();
    }
  });

  it('rejects with the decoder\'s own error: a model that cannot be opened, latents of the wrong rank', async () => {
    const missing = DecoderConfigSchema.parse({ onnx: join(dir, 'nope.onnx'), temporal: 4, spatial: 8 });
    await expect(DecoderThread.create(missing)).rejects.toThrow(/decoder: cannot load ONNX model .*nope\.onnx/);
    const path = join(dir, 'small.onnx');
    writeFileSync(path, buildDemoDecoder({ channels: 4, size: 4, temporal: 4, spatial: 8, hidden: 8, seed: 5 }));
    const t = await DecoderThread.create(DecoderConfigSchema.parse({ onnx: path, temporal: 4, spatial: 8 }));
    await expect(t.decode({ dtype: 'float32', dims: [1, 4, 4, 4], data: new Float32Array(64) })).rejects.toThrow(/\[B,C,F,h,w\]/);
    // the thread goes on serving after a failed request
    const ok = await t.decode({ dtype: 'float32', dims: [1, 4, 2, 4, 4], data: jobNoise(1, [4, 2, 4, 4]).initial });
    expect(ok[0].frames).toHaveLength(8);
    await t.release();
    await expect(t.decode({ dtype: 'float32', dims: [1, 4, 2, 4, 4], data: new Float32Array(128) })).rejects.toThrow(/decoder thread exited/);
  });
});

describe('defaultCapacity', () => {
  it('is two jobs per stage and two more, at least one, and fewer when the decoded clips would take over a quarter of free memory', () => {
    const clip = 100 * 2 ** 20;
    const plenty = 64 * 2 ** 30;
    expect(defaultCapacity(1, clip, plenty)).toBe(4);
    expect(defaultCapacity(2, clip, plenty)).toBe(6);
    expect(defaultCapacity(4, clip, plenty)).toBe(10);
    expect(defaultCapacity(2, clip, 12 * clip)).toBe(3);
    expect(defaultCapacity(2, clip, clip)).toBe(1);
  });
});
