import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../shared/halfFloat.ts';
import { SafetensorsFile, writeSafetensors, type WriteTensor } from '../../gpu-backend/model/safetensors.ts';
import { GOLDEN_DIR } from '../golden.ts';

const GOLDEN = `${GOLDEN_DIR}/weights.safetensors`;
const dir = join(tmpdir(), `a1-st-${process.pid}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a safetensors file from a raw header string and data bytes */
function raw(name: string, header: string, data = new Uint8Array(0), lenOverride?: bigint): string {
  const hb = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + hb.length + data.length);
  new DataView(buf.buffer).setBigUint64(0, lenOverride ?? BigInt(hb.length), true);
  buf.set(hb, 8);
  buf.set(data, 8 + hb.length);
  const p = join(dir, name);
  writeFileSync(p, buf);
  return p;
}

describe('safetensors', () => {
  it('golden file: header parsed lazily, tensor offsets, byte-exact round trip', () => {
    const f = SafetensorsFile.open(GOLDEN);
    expect(f.names.length).toBe(93);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.info('decoder_pred.bias')).toEqual({ dtype: 'F32', shape: [16], byteOffset: 8 + 8336, byteLength: 64 });
    const tensors = new Map<string, WriteTensor>();
    for (const n of f.names) tensors.set(n, { dtype: 'F32', shape: f.info(n).shape, data: f.readFloat32(n) });
    f.close();
    expect(() => f.readFloat32('pos_embed')).toThrow(/closed/);
    // insertion order must not matter: reverse it
    const rev = new Map([...tensors].reverse());
    const out = join(dir, 'rt.safetensors');
    writeSafetensors(out, rev);
    expect(Buffer.compare(readFileSync(out), readFileSync(GOLDEN))).toBe(0);
  });

  it('F16 and BF16: bit patterns, round-to-nearest-even, read back as float32', () => {
    const v = new Float32Array([1, -2, 65504, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0, -0, 1e6, 3 * 2 ** -25, 5 * 2 ** -25, 3 * 2 ** -26]);
    expect(Array.from(f32ToF16(v))).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3c00, 0x3c02, 0, 0x8000, 0x7c00, 0x0002, 0x0002, 0x0001]);
    expect(Array.from(f32ToBf16(new Float32Array([1, -2, 1 + 2 ** -8, 1 + 3 * 2 ** -8])))).toEqual([0x3f80, 0xc000, 0x3f80, 0x3f82]);
    expect(Array.from(f16ToF32(new Uint16Array([0x3c00, 0x0001, 0xfc00])))).toEqual([1, 2 ** -24, -Infinity]);
    expect(Array.from(bf16ToF32(new Uint16Array([0x3f80, 0xc040])))).toEqual([1, -3]);
    const data = new Float32Array(64).map((_, i) => Math.sin(i) * 10);
    const p = join(dir, 'half.safetensors');
    writeSafetensors(p, new Map<string, WriteTensor>([
      ['a', { dtype: 'F16', shape: [8, 8], data }], ['b', { dtype: 'BF16', shape: [64], data }],
      ['c', { dtype: 'F32', shape: [2, 32], data }],
    ]));
    const f = SafetensorsFile.open(p);
    expect(f.info('a')).toMatchObject({ dtype: 'F16', byteLength: 128 });
    expect(f.info('b')).toMatchObject({ dtype: 'BF16', byteLength: 128 });
    const a = f.readFloat32('a');
    const b = f.readFloat32('b');
    for (let i = 0; i < 64; i++) {
      expect(Math.abs(a[i] - data[i])).toBeLessThanOrEqual(Math.abs(data[i]) * 2 ** -11 + 1e-7);
      expect(Math.abs(b[i] - data[i])).toBeLessThanOrEqual(Math.abs(data[i]) * 2 ** -8 + 1e-7);
    }
    expect(Array.from(f.readFloat32('c'))).toEqual(Array.from(data));
    f.close();
  });

  it('header is space-padded so the data starts at a multiple of 8', () => {
    const p = join(dir, 'pad.safetensors');
    writeSafetensors(p, new Map([['x', { dtype: 'F32' as const, shape: [1], data: new Float32Array([2]) }]]), { k: 'v' });
    const f = SafetensorsFile.open(p);
    expect((8 + f.headerLength) % 8).toBe(0);
    expect(f.metadata).toEqual({ format: 'pt', k: 'v' });
    f.close();
  });

  const f32 = (n: number) => new Uint8Array(4 * n);
  it.each([
    ['short', () => { const p = join(dir, 'short'); writeFileSync(p, new Uint8Array(5)); return p; },
      /short: file is 5 bytes, shorter than the 8-byte header length/],
    ['absurd header length', () => raw('absurd', '{}', new Uint8Array(0), 1n << 40n),
      /header length 1099511627776 runs past the end of the file/],
    ['header past EOF', () => raw('pasteof', '{"a":1}', new Uint8Array(0), 100n), /header length 100 runs past the end of the file \(15 bytes/],
    ['bad JSON', () => raw('badjson', '{"a": [1,2', f32(1)), /badjson: header \(10 bytes at offset 8\) is not valid JSON/],
    ['not an object', () => raw('arr', '[1,2]  '), /header must be a JSON object/],
    ['out-of-range offsets', () => raw('oor', '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f32(2)),
      /tensor "w": data_offsets \[0,16\] run past the end of the data section \(8 bytes/],
    ['wrong dtype size', () => raw('dsize', '{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}', f32(4)),
      /tensor "w": data_offsets \[0,16\] span 16 bytes, but F16 shape \[4\] needs 8/],
    ['overlap', () => raw('ovl', '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f32(3)),
      /tensors "a" \[0,8\] and "b" \[4,12\] overlap/],
    ['unknown dtype', () => raw('udt', '{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}', f32(1)), /tensor "w": unknown dtype "F8"/],
    ['bad shape', () => raw('bshape', '{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', f32(1)), /tensor "w": shape \[-1\] must be/],
    ['bad offsets', () => raw('boff', '{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', f32(1)), /tensor "w": data_offsets \[4,0\] must be/],
    ['truncated golden', () => { const p = join(dir, 'trunc.safetensors'); const b = readFileSync(GOLDEN); writeFileSync(p, b.subarray(0, b.length - 100)); return p; },
      /trunc\.safetensors: tensor "pos_embed": data_offsets \[1505424,1522320\] run past the end of the data section \(1522220 bytes.*truncated\?/],
    ['missing file', () => join(dir, 'nope.safetensors'), /cannot open safetensors file .*nope\.safetensors/],
  ])('rejects %s with a precise message', (_what, make, msg) => {
    expect(() => SafetensorsFile.open(make())).toThrow(msg);
  });

  it('unknown tensor names and non-float reads are precise', () => {
    const f = SafetensorsFile.open(raw('int', '{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', new Uint8Array(8)));
    expect(() => f.info('zz')).toThrow(/no tensor "zz"/);
    expect(() => f.readFloat32('i')).toThrow(/tensor "i" has dtype I64, expected a float/);
    f.close();
  });

  it('writer rejects a data length that does not match the shape', () => {
    expect(() => writeSafetensors(join(dir, 'w.safetensors'), new Map([['x', { dtype: 'F32' as const, shape: [3], data: new Float32Array(2) }]])))
      .toThrow(/"x" has 2 elements, shape \[3\] needs 3/);
  });
});
