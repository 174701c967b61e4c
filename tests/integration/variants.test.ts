// The content variants made beside a clip (gpu-backend/driver/variants.ts) by the ffmpeg process that encodes its MP4
// (encodeMp4 with `variants`): a WebP thumbnail of the middle frame and a JPEG spritesheet of 16 frames, checked by
// ffprobe and by their pixels; the same clip gives the same bytes, and the MP4 is the one encoded without variants.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMp4, ffmpegPath, ffprobePath, probeMp4 } from '../../gpu-backend/driver/ffmpeg.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-variants-'));
const W = 64, H = 48, N = 32;
const opts = (out: string, base?: string, frames = N) => ({ width: W, height: H, fps: 8, out: join(dir, out), variants: base === undefined ? undefined : { base: join(dir, base), frames } });
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

function probe(file: string): { codec_name: string; width: number; height: number } {
  const r = spawnSync(ffprobePath(), ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', file], { encoding: 'utf8' });
  return JSON.parse(r.stdout).streams[0];
}

/** Mean grey level of an image file, decoded by ffmpeg. */
function meanGrey(file: string): number {
  const r = spawnSync(ffmpegPath(), ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { maxBuffer: 1 << 24 });
  const px = r.stdout as Buffer;
  return px.reduce((a, b) => a + b, 0) / px.length;
}

/** Frame i is flat grey 8·i. */
const greys = (n: number) => Array.from({ length: n }, (_, i) => new Uint8Array(W * H * 3).fill(8 * i));

describe('content variants', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a WebP thumbnail of the middle frame and a 4×4 JPEG spritesheet, byte for byte reproducible', async () => {
    // the middle frame (16) is grey 128, the spritesheet spans 0 … 248
    const r = await encodeMp4(greys(N), opts('clip.mp4', 'clip'));
    const v = r.variants;
    expect(v.map((x) => [x.name, x.content_type, x.file])).toEqual([
      ['thumbnail', 'image/webp', join(dir, 'clip.thumbnail.webp')],
      ['spritesheet', 'image/jpeg', join(dir, 'clip.spritesheet.jpg')],
    ]);
    expect(probe(v[0].file)).toMatchObject({ codec_name: 'webp', width: W, height: H });
    expect(probe(v[1].file)).toMatchObject({ codec_name: 'mjpeg', width: 4 * W, height: 4 * H });
    expect(Math.abs(meanGrey(v[0].file) - 128)).toBeLessThan(6);
    // 16 tiles of frames 0, 2, …, 30: their mean is the mean of 8·i over those frames (120)
    expect(Math.abs(meanGrey(v[1].file) - 120)).toBeLessThan(6);
    const again = await encodeMp4(greys(N), opts('again.mp4', 'again'));
    expect(again.variants.map((x) => sha(x.file))).toEqual(v.map((x) => sha(x.file)));
    await expect(encodeMp4(greys(N), opts('bad.mp4', 'bad', 0))).rejects.toThrow(/frames must be a positive integer/);
  });

  it('writes the same valid H.264 MP4 as an encode without variants', async () => {
    const r = await encodeMp4(greys(N), opts('with.mp4', 'with'));
    expect(r.frames).toBe(N);
    expect(probeMp4(r.path)).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width: W, height: H, fps: 8, frames: N, faststart: true });
    const plain = await encodeMp4(greys(N), opts('plain.mp4'));
    expect(plain.variants).toEqual([]);
    expect(sha(r.path)).toBe(sha(plain.path));
  });

  it('gives a full-size spritesheet for a clip shorter than the grid', async () => {
    const r = await encodeMp4(greys(5), opts('short.mp4', 'short', 5));
    expect(probe(r.variants[1].file)).toMatchObject({ codec_name: 'mjpeg', width: 4 * W, height: 4 * H });
    expect(Math.abs(meanGrey(r.variants[0].file) - 16)).toBeLessThan(6); // frame 2
  });

  it('rejects a wrong-size frame, a wrong frame count or an ffmpeg failure, leaving no variant file behind', async () => {
    const frames = greys(N);
    frames[20] = new Uint8Array(W * H * 3 - 3);
    await expect(encodeMp4(frames, opts('wrong.mp4', 'wrong'))).rejects.toThrow(`mp4: frame 20 has 9213 bytes, expected 9216 (${W}x${H} RGB24)`);
    await expect(encodeMp4(greys(N - 1), opts('few.mp4', 'few'))).rejects.toThrow(
      `mp4: the variants were asked for a clip of ${N} frames, but ${N - 1} came`,
    );
    // ffmpeg's own error comes with its stderr
    await expect(encodeMp4(greys(N), opts('nodir.mp4', 'no/such/dir/x'))).rejects.toThrow(/^mp4: ffmpeg exited with \d+: .*no[/]such[/]dir/s);
    for (const base of ['wrong', 'few']) {
      for (const f of [`${base}.thumbnail.webp`, `${base}.spritesheet.jpg`]) expect(existsSync(join(dir, f))).toBe(false);
    }
  });
});
