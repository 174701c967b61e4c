import { describe, expect, it } from 'vitest';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32 } from '../../shared/crc32.ts';
import { FrameError, HEADER_BYTES, decodeFrame, encodeFrameBytes, type FrameMeta } from '../../shared/frame.ts';
import { FrameDecoder } from '../../shared/frameDecoder.ts';
import { jobIdOf } from '../../shared/jobId.ts';
import { det } from '../../gpu-backend/pipeline/setup.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../shared/halfFloat.ts';
import type { Tensor } from '../../shared/tensor.ts';

const meta = (over: Partial<FrameMeta> = {}): FrameMeta => ({
  kind: 'data',
  jobId: jobIdOf('job-1'),
  origin: 7,
  step: 3,
  microBatch: 1,
  segment: 2,
  role: 'skip',
  roleIndex: 4,
  ...over,
});

const rand = (n: number, seed = 1): Float32Array => det(n, seed, 4);

function expectFrameError(fn: () => unknown, code: string, msg: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FrameError);
    expect((e as FrameError).code).toBe(code);
    expect((e as Error).message).toMatch(msg);
    return;
  }
  throw new Error('expected a FrameError');
}

describe('frame codec', () => {
  it('crc32 matches zlib', () => {
    const bytes = new Uint8Array(rand(1001).buffer);
    expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    expect(crc32(bytes.subarray(3, 500), crc32(bytes.subarray(0, 3)))).toBe(zlibCrc32(bytes.subarray(0, 500)));
  });

  it('round-trips float32 exactly with all header fields', () => {
    const t: Tensor = { dtype: 'float32', dims: [2, 5, 3], data: rand(30) };
    const f = decodeFrame(encodeFrameBytes(meta(), t));
    expect(f.header).toMatchObject({ ...meta(), dtype: 'float32', dims: [2, 5, 3], payloadBytes: 120, f16Wire: false });
    expect(Array.from(f.tensor.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));
  });

  it('round-trips int64 and native float16', () => {
    const y: Tensor = { dtype: 'int64', dims: [3], data: new BigInt64Array([0n, -5n, 2n ** 62n]) };
    const fy = decodeFrame(encodeFrameBytes(meta({ role: 'input', roleIndex: 2 }), y));
    expect(fy.tensor.dtype).toBe('int64');
    expect(Array.from(fy.tensor.data as BigInt64Array)).toEqual([0n, -5n, 2n ** 62n]);
    const h: Tensor = { dtype: 'float16', dims: [2, 2], data: new Uint16Array([0x3c00, 0xc000, 0x7c00, 1]) };
    const fh = decodeFrame(encodeFrameBytes(meta(), h));
    expect(fh.tensor.dtype).toBe('float16');
    expect(Array.from(fh.tensor.data as Uint16Array)).toEqual([0x3c00, 0xc000, 0x7c00, 1]);
  });

  it('float16 transport halves the bytes and rounds to nearest even', () => {
    const data = rand(64, 9);
    const bytes = encodeFrameBytes(meta(), { dtype: 'float32', dims: [64], data }, { f16: true });
    expect(bytes.length).toBe(HEADER_BYTES + 128);
    const f = decodeFrame(bytes);
    expect(f.header.f16Wire).toBe(true);
    expect(f.tensor.dtype).toBe('float32');
    const got = f.tensor.data as Float32Array;
    for (let i = 0; i < 64; i++) expect(Math.abs(got[i] - data[i])).toBeLessThanOrEqual(Math.abs(data[i]) * 2 ** -11 + 1e-7);
    // exact ties: 1 + 2^-11 is halfway between 1 and 1+2^-10 -> even (1); 1 + 3*2^-11 -> 1 + 2^-9
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up to inf
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(2 ** -24)).toBe(1); // smallest subnormal
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie -> even (0)
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // tie between 1 and 2 -> 2
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    for (let h = 0; h < 0x7c00; h += 37) expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
  });

  it('rejects a flipped payload bit as a torn frame, naming the job', () => {
    const bytes = encodeFrameBytes(meta(), { dtype: 'float32', dims: [8], data: rand(8) });
    bytes[HEADER_BYTES + 5] ^= 0x10;
    expectFrameError(() => decodeFrame(bytes), 'torn', /torn frame: CRC32 mismatch .*job [0-9a-f]{32} step 3 micro-batch 1/);
  });

  it('rejects a truncated frame', () => {
    const bytes = encodeFrameBytes(meta(), { dtype: 'float32', dims: [8], data: rand(8) });
    expectFrameError(() => decodeFrame(bytes.subarray(0, bytes.length - 4)), 'torn', /28 of 32 payload bytes/);
  });

  it('rejects bad magic, unsupported version, oversized dims and payload', () => {
    const good = () => encodeFrameBytes(meta(), { dtype: 'float32', dims: [4, 4], data: rand(16) });
    const b1 = good();
    b1[0] = 0x58;
    expectFrameError(() => decodeFrame(b1), 'bad_magic', /bad magic/);
    const b2 = good();
    new DataView(b2.buffer).setUint16(4, 9, true);
    expectFrameError(() => decodeFrame(b2), 'bad_version', /unsupported version 9/);
    expectFrameError(() => decodeFrame(good(), { maxPayloadBytes: 32 }), 'oversized', /payload 64 B exceeds the maximum 32 B/);
    expectFrameError(() => decodeFrame(good(), { maxDim: 3 }), 'oversized', /dim 0 = 4 exceeds the maximum 3/);
    const b3 = good();
    new DataView(b3.buffer).setUint32(44, 5, true); // dims no longer match the payload size
    expectFrameError(() => decodeFrame(b3), 'bad_header', /does not match dims \[5,4\]/);
  });

  it('rejects a dtype mismatch and unknown dtype codes', () => {
    const y = encodeFrameBytes(meta(), { dtype: 'int64', dims: [2], data: new BigInt64Array([1n, 2n]) });
    expectFrameError(() => decodeFrame(y, { expectDtype: 'float32' }), 'dtype', /dtype mismatch .* expected float32, got int64/);
    const b = encodeFrameBytes(meta(), { dtype: 'float32', dims: [1], data: new Float32Array(1) });
    b[41] = 99;
    expectFrameError(() => decodeFrame(b), 'dtype', /unknown dtype code 99/);
    expect(() => encodeFrameBytes(meta(), { dtype: 'bfloat16', dims: [1], data: new Uint16Array(1) })).toThrow(/unsupported tensor dtype bfloat16/);
  });

  it('reassembles a stream cut at arbitrary chunk boundaries', () => {
    const frames = [0, 1, 2, 3, 4].map((i) =>
      encodeFrameBytes(meta({ step: i }), { dtype: 'float32', dims: [i * 7 + 1], data: rand(i * 7 + 1, i + 1) }, { f16: i === 3 }),
    );
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let off = 0;
    for (const f of frames) {
      all.set(f, off);
      off += f.length;
    }
    for (const cut of [1, 3, 17, 83, 84, 85, 200]) {
      const dec = new FrameDecoder();
      const got = [];
      let seed = cut;
      for (let p = 0; p < all.length; ) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        const n = 1 + (seed % cut);
        got.push(...dec.push(all.subarray(p, p + n)));
        p += n;
      }
      expect(got.map((f) => f.header.step)).toEqual([0, 1, 2, 3, 4]);
      expect(dec.bufferedBytes).toBe(0);
      expect(got[2].tensor.data).toEqual(rand(15, 3));
    }
  });

  it('a decoder stays failed after a torn frame in the stream', () => {
    const a = encodeFrameBytes(meta(), { dtype: 'float32', dims: [4], data: rand(4) });
    const b = encodeFrameBytes(meta({ step: 9 }), { dtype: 'float32', dims: [4], data: rand(4) });
    b[b.length - 1] ^= 1;
    const dec = new FrameDecoder();
    expect(dec.push(a)).toHaveLength(1);
    expect(() => dec.push(b)).toThrow(/torn frame.*step 9/);
    expect(() => dec.push(a)).toThrow(/torn frame/);
  });

  it('feed() returns the frames before a torn one together with the error', () => {
    const a = encodeFrameBytes(meta({ step: 1 }), { dtype: 'float32', dims: [4], data: rand(4) });
    const b = encodeFrameBytes(meta({ step: 2 }), { dtype: 'float32', dims: [4], data: rand(4) });
    b[HEADER_BYTES] ^= 1;
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    const { frames, error } = new FrameDecoder().feed(both);
    expect(frames.map((f) => f.header.step)).toEqual([1]);
    expect(error?.code).toBe('torn');
    expect(error?.header?.step).toBe(2);
  });

  it('job ids: uuid kept, other strings hashed stably', () => {
    expect(jobIdOf('123e4567-e89b-12d3-a456-426614174000')).toBe('123e4567e89b12d3a456426614174000');
    expect(jobIdOf('abc')).toMatch(/^[0-9a-f]{32}$/);
    expect(jobIdOf('abc')).toBe(jobIdOf('abc'));
    expect(jobIdOf('abc')).not.toBe(jobIdOf('abd'));
  });
});
