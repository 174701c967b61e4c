// The content variants made beside a clip (gpu-backend/driver/variants.ts): a WebP thumbnail of the middle frame and
// a JPEG spritesheet of 16 frames, checked by ffprobe and by their pixels; the same clip gives the same bytes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMp4, ffmpegPath, ffprobePath } from '../../gpu-backend/driver/ffmpeg.ts';
import { makeVariants } from '../../gpu-backend/driver/variants.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-variants-'));
const W = 64, H = 48, N = 32;

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

describe('content variants', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a WebP thumbnail of the middle frame and a 4×4 JPEG spritesheet, byte for byte reproducible', async () => {
    // frame i is flat grey 8·i: the middle frame (16) is grey 128, the spritesheet spans 0 … 248
    const frames = Array.from({ length: N }, (_, i) => new Uint8Array(W * H * 3).fill(8 * i));
    const mp4 = join(dir, 'clip.mp4');
    await encodeMp4(frames, { width: W, height: H, fps: 8, out: mp4 });
    const v = await makeVariants(mp4, N, join(dir, 'clip'));
    expect(v.map((x) => [x.name, x.content_type])).toEqual([['thumbnail', 'image/webp'], ['spritesheet', 'image/jpeg']]);
    expect(probe(v[0].file)).toMatchObject({ codec_name: 'webp', width: W, height: H });
    expect(probe(v[1].file)).toMatchObject({ codec_name: 'mjpeg', width: 4 * W, height: 4 * H });
    expect(Math.abs(meanGrey(v[0].file) - 128)).toBeLessThan(6);
    // 16 tiles of frames 0, 2, …, 30: their mean is the mean of 8·i over those frames (120)
    expect(Math.abs(meanGrey(v[1].file) - 120)).toBeLessThan(6);
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    const again = await makeVariants(mp4, N, join(dir, 'again'));
    expect(again.map((x) => sha(x.file))).toEqual(v.map((x) => sha(x.file)));
    await expect(makeVariants(mp4, 0, join(dir, 'bad'))).rejects.toThrow(/frames must be a positive integer/);
  });
});
