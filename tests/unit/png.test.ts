// The PNG writer: ffprobe reads the files it makes, and ffmpeg decodes them back to exactly the bytes written.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ffmpegPath, ffprobePath } from '../../gpu-backend/driver/ffmpeg.ts';
import { encodePng, toRgbBytes } from '../../gpu-backend/driver/png.ts';
import { Rng } from '../../gpu-backend/driver/rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-png-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function probe(path: string): { codec_name: string; width: number; height: number; pix_fmt: string } {
  const r = spawnSync(ffprobePath(), ['-v', 'error', '-show_entries', 'stream=codec_name,width,height,pix_fmt', '-of', 'json', path], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { streams: { codec_name: string; width: number; height: number; pix_fmt: string }[] }).streams[0];
}

function decode(path: string): Buffer {
  const r = spawnSync(ffmpegPath(), ['-v', 'error', '-i', path, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 26 });
  expect(r.status, r.stderr?.toString()).toBe(0);
  return r.stdout;
}

describe('PNG writer', () => {
  it.each([[1, 1], [7, 3], [64, 48], [256, 256]])('%ix%i random RGB: ffprobe sees a png of that size, ffmpeg decodes the same bytes', (w, h) => {
    const rng = new Rng(w * 1000 + h);
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = rng.nextU32() & 0xff;
    const file = join(dir, `${w}x${h}.png`);
    writeFileSync(file, encodePng(rgb, w, h));
    expect(probe(file)).toEqual({ codec_name: 'png', width: w, height: h, pix_fmt: 'rgb24' });
    expect(decode(file).equals(Buffer.from(rgb))).toBe(true);
  });

  it('refuses a buffer of the wrong length and a zero size', () => {
    expect(() => encodePng(new Uint8Array(11), 2, 2)).toThrow(/2x2 RGB needs 12 bytes, got 11/);
    expect(() => encodePng(new Uint8Array(0), 0, 1)).toThrow(/positive integers, got 0x1/);
  });

  it('maps [-1, 1] to bytes as the official scripts save images (clamped, ·255 + 0.5)', () => {
    // [1, 3, 1, 4]: channel planes of 4 pixels
    const data = Float32Array.of(-2, -1, 0, 1, 0.5, 2, -0.999, 0.999, 0, 0, 0, 0);
    const [rgb] = toRgbBytes({ dtype: 'float32', dims: [1, 3, 1, 4], data });
    // pixel 0: R = 0 (clamped), G = 0.75·255 + 0.5 → 191, B = 127.5 + 0.5 → 128
    expect(Array.from(rgb)).toEqual([0, 191, 128, 0, 255, 128, 128, 0, 128, 255, 255, 128]);
    expect(() => toRgbBytes({ dtype: 'float32', dims: [1, 4, 1, 1], data: new Float32Array(4) })).toThrow(/\[B, 3, H, W\]/);
  });
});
