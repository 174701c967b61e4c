// The content variants of a clip, as the OpenAI Videos API has them (GET /videos/{id}/content?variant=…): a
// thumbnail (WebP of the middle frame, a representative one for short clips) and a spritesheet (JPEG grid of up to
// 16 frames evenly spread over the clip, for scrubbing previews). Made by the same ffmpeg process that encodes the MP4
// (ffmpeg.ts `encodeMp4`), from the raw frames it already gets: no second spawn, no re-decode of the MP4. Bit-exact
// flags on, so the same clip gives the same bytes (content addressing dedups them like the MP4).

export interface Variant {
  name: 'thumbnail' | 'spritesheet';
  content_type: 'image/webp' | 'image/jpeg';
  file: string;
}

/** Columns and rows of the spritesheet grid. */
export const SPRITE_GRID = 4;

/** A variant as ffmpeg makes it: a filter chain from a copy of the raw input frames, and its encoder options. */
export interface VariantOutput extends Variant {
  filter: string;
  codec: string[];
}

/**
 * The variants of a clip `frames` long, written to `${base}.thumbnail.webp` and `${base}.spritesheet.jpg`.
 * Spritesheet tiles keep the clip's aspect, at most 256 pixels wide; a clip shorter than the grid gets a full-size
 * sheet with its last tiles empty (`tile` flushes a partial grid at the end).
 */
export function variantOutputs(frames: number, base: string): VariantOutput[] {
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`variants: frames must be a positive integer, got ${frames}`);
  const step = Math.max(1, Math.ceil(frames / (SPRITE_GRID * SPRITE_GRID)));
  // one image each, on one thread (nothing to share out); 4:2:0 as when the variants were cut from the decoded MP4
  // (from RGB input ffmpeg would pick 4:4:4 for the JPEG)
  const image = ['-frames:v', '1', '-threads', '1'];
  return [
    {
      name: 'thumbnail', content_type: 'image/webp', file: `${base}.thumbnail.webp`,
      filter: `select=eq(n\\,${Math.floor(frames / 2)})`,
      codec: [...image, '-c:v', 'libwebp', '-quality', '85', '-pix_fmt', 'yuv420p'],
    },
    {
      name: 'spritesheet', content_type: 'image/jpeg', file: `${base}.spritesheet.jpg`,
      filter: `select=not(mod(n\\,${step})),scale='min(256,iw)':-2,tile=${SPRITE_GRID}x${SPRITE_GRID}`,
      codec: [...image, '-c:v', 'mjpeg', '-q:v', '4', '-pix_fmt', 'yuvj420p'],
    },
  ];
}
