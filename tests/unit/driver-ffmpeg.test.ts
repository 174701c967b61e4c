import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMp4, ffmpegPath, ffprobePath, probeMp4, splitFrames } from '../../gpu-backend/driver/ffmpeg.ts';

const dir = mkdtempSync(join(tmpdir(), 'e2-ffmpeg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frames(n: number, w: number, h: number): Uint8Array[] {
  return Array.from({ length: n }, (_, t) => {
    const f = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        f[o] = (x * 4 + t * 16) & 255;
        f[o + 1] = (y * 4) & 255;
        f[o + 2] = (t * 40) & 255;
      }
    return f;
  });
}

describe('ffmpeg MP4 encoder', () => {
  it('finds ffmpeg and ffprobe', () => {
    expect(ffmpegPath()).toMatch(/ffmpeg$/);
    expect(ffprobePath()).toMatch(/ffprobe$/);
  });

  it('encodes H.264 yuv420p with faststart at the exact fps, duration and size', async () => {
    const out = join(dir, 'a.mp4');
    const r = await encodeMp4(frames(24, 64, 48), { width: 64, height: 48, fps: 8, out });
    expect(r.frames).toBe(24);
    const p = probeMp4(out);
    expect(p).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width: 64, height: 48, fps: 8, frames: 24, faststart: true });
    expect(p.duration).toBeCloseTo(3.0, 6);
  });

  it('gives the same bytes for the same frames', async () => {
    const a = join(dir, 'b1.mp4');
    const b = join(dir, 'b2.mp4');
    await encodeMp4(frames(8, 32, 32), { width: 32, height: 32, fps: 4, out: a });
    await encodeMp4(frames(8, 32, 32), { width: 32, height: 32, fps: 4, out: b });
    expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
  });

  it('rejects a frame of the wrong size with a precise message', async () => {
    const f = frames(3, 32, 32);
    f[1] = new Uint8Array(32 * 32 * 3 - 5);
    await expect(encodeMp4(f, { width: 32, height: 32, fps: 4, out: join(dir, 'bad.mp4') })).rejects.toThrow(
      'mp4: frame 1 has 3067 bytes, expected 3072 (32x32 RGB24)',
    );
  });

  it('rejects odd sizes, no frames, and a buffer that is not whole frames', async () => {
    await expect(encodeMp4(frames(1, 32, 32), { width: 31, height: 32, fps: 4, out: join(dir, 'odd.mp4') })).rejects.toThrow(
      /even width and height, got 31x32/,
    );
    await expect(encodeMp4([], { width: 32, height: 32, fps: 4, out: join(dir, 'none.mp4') })).rejects.toThrow(/no frames/);
    expect(() => splitFrames(new Uint8Array(100), 4, 4)).toThrow(/not a whole number of 4x4 RGB24 frames/);
    expect(splitFrames(new Uint8Array(96), 4, 4)).toHaveLength(2);
  });

  it('says clearly when ffmpeg is missing', () => {
    const old = process.env.UVIT_FFMPEG;
    process.env.UVIT_FFMPEG = join(dir, 'no-such-ffmpeg');
    try {
      expect(() => ffmpegPath()).toThrow(/UVIT_FFMPEG=.*no-such-ffmpeg is not an executable file/);
    } finally {
      if (old === undefined) delete process.env.UVIT_FFMPEG;
      else process.env.UVIT_FFMPEG = old;
    }
  });
});
