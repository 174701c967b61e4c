// The content variants of a clip, as the OpenAI Videos API has them (GET /videos/{id}/content?variant=…): a
// thumbnail (WebP of the middle frame, a representative one for short clips) and a spritesheet (JPEG grid of up to
// 16 frames evenly spread over the clip, for scrubbing previews). Made from the encoded MP4 by ffmpeg, bit-exact
// flags on, so the same clip gives the same bytes (content addressing dedups them like the MP4).
import { spawn } from 'node:child_process';
import { ffmpegPath } from './ffmpeg.ts';

export interface Variant {
  name: 'thumbnail' | 'spritesheet';
  content_type: 'image/webp' | 'image/jpeg';
  file: string;
}

/** Columns and rows of the spritesheet grid. */
export const SPRITE_GRID = 4;

function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { if (err.length < 4000) err += d; });
    child.on('error', (e) => reject(new Error(`variants: could not start ffmpeg: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`variants: ffmpeg exited with ${code}: ${err.trim() || '(no stderr)'}`))));
  });
}

/**
 * Thumbnail and spritesheet of `mp4` (`frames` long), written to `${base}.thumbnail.webp` and
 * `${base}.spritesheet.jpg`. Tiles keep the clip's aspect, at most 256 pixels wide.
 */
export async function makeVariants(mp4: string, frames: number, base: string): Promise<Variant[]> {
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`variants: frames must be a positive integer, got ${frames}`);
  const bitexact = ['-map_metadata', '-1', '-fflags', '+bitexact', '-flags:v', '+bitexact'];
  const thumbnail = `${base}.thumbnail.webp`;
  await ffmpeg(['-i', mp4, '-vf', `select=eq(n\\,${Math.floor(frames / 2)})`, '-frames:v', '1', '-c:v', 'libwebp', '-quality', '85', ...bitexact, thumbnail]);
  const tiles = SPRITE_GRID * SPRITE_GRID;
  const step = Math.max(1, Math.ceil(frames / tiles));
  const spritesheet = `${base}.spritesheet.jpg`;
  await ffmpeg(['-i', mp4, '-vf', `select=not(mod(n\\,${step})),scale='min(256,iw)':-2,tile=${SPRITE_GRID}x${SPRITE_GRID}`, '-frames:v', '1',
    '-c:v', 'mjpeg', '-q:v', '4', ...bitexact, spritesheet]);
  return [
    { name: 'thumbnail', content_type: 'image/webp', file: thumbnail },
    { name: 'spritesheet', content_type: 'image/jpeg', file: spritesheet },
  ];
}
