// A minimal PNG writer (8-bit RGB, no interlace): IHDR, one zlib IDAT, IEND. Every scanline uses filter 0; zlib's
// own compression is all an image of sampled noise or a photo gets from PNG filters anyway at these sizes.
import { deflateSync } from 'node:zlib';
import { crc32 } from '../../shared/crc32.ts';
import type { Tensor } from '../../shared/tensor.ts';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  // the CRC covers the type and the data, not the length
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** PNG bytes of `rgb`: width·height·3 bytes, row-major, R G B per pixel. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 2 ** 24 || height > 2 ** 24)
    throw new Error(`png: size must be positive integers, got ${width}x${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`png: ${width}x${height} RGB needs ${width * height * 3} bytes, got ${rgb.length}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, filter method 0, no interlace
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/**
 * Images [B, 3, H, W] in [-1, 1] (the autoencoder's or a pixel model's output) → B interleaved RGB byte arrays, as the
 * official scripts save them: x/2 + 1/2 clamped to [0, 1], then torchvision's save_image (·255 + 0.5, truncated).
 */
export function toRgbBytes(images: Tensor<'float32'>): Uint8Array[] {
  const [B, C, H, W] = images.dims;
  if (images.dims.length !== 4 || C !== 3) throw new Error(`png: images must be [B, 3, H, W], got [${images.dims.join(', ')}]`);
  const hw = H * W;
  const out: Uint8Array[] = [];
  for (let b = 0; b < B; b++) {
    const rgb = new Uint8Array(hw * 3);
    for (let c = 0; c < 3; c++) {
      const plane = (b * 3 + c) * hw;
      for (let i = 0; i < hw; i++) {
        const v = Math.min(1, Math.max(0, images.data[plane + i] * 0.5 + 0.5));
        rgb[i * 3 + c] = Math.floor(v * 255 + 0.5);
      }
    }
    out.push(rgb);
  }
  return out;
}
