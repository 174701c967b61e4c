import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy, readNpy, writeNpy } from '../../gpu-backend/model/npy.ts';
import type { Tensor } from '../../shared/tensor.ts';
import { GOLDEN_DIR } from '../golden.ts';

const G = GOLDEN_DIR;
const dir = join(tmpdir(), `a1-npy-${process.pid}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function npyBytes(header: string, data: Uint8Array, version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const h = header + '\n';
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  for (let i = 0; i < h.length; i++) out[pre + i] = h.charCodeAt(i);
  out.set(data, pre + h.length);
  return out;
}
const hdr = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

describe('npy', () => {
  it.each(['input_x', 'input_y', 'input_timesteps', 'output', 'intermediates/decoder_pred'])(
    'golden %s round-trips byte for byte', (name) => {
      const p = `${G}/${name}.npy`;
      const t = readNpy(p);
      expect(Buffer.compare(Buffer.from(encodeNpy(t)), readFileSync(p))).toBe(0);
    });

  it('reads golden dtypes and shapes', () => {
    expect(readNpy(`${G}/input_y.npy`)).toMatchObject({ dtype: 'int64', dims: [2] });
    expect(Array.from(readNpy(`${G}/input_y.npy`).data as BigInt64Array)).toEqual([1n, 7n]);
    expect(Array.from(readNpy(`${G}/input_timesteps.npy`).data as Float32Array)).toEqual([10, 500]);
  });

  it.each<Tensor>([
    { dtype: 'float32', dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
    { dtype: 'float16', dims: [3], data: new Uint16Array([0x3c00, 0, 0xc000]) },
    { dtype: 'int64', dims: [1, 2], data: new BigInt64Array([-5n, 1n << 40n]) },
    { dtype: 'int32', dims: [2], data: new Int32Array([7, -8]) },
    { dtype: 'uint8', dims: [], data: new Uint8Array([9]) },
    { dtype: 'float32', dims: [0, 4], data: new Float32Array(0) },
  ])('round-trips $dtype $dims through a file', (t) => {
    const p = join(dir, `rt-${t.dtype}-${t.dims.join('x')}.npy`);
    writeNpy(p, t);
    const r = readNpy(p);
    expect(r.dtype).toBe(t.dtype);
    expect(r.dims).toEqual(t.dims);
    expect(Array.from(r.data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    expect(readFileSync(p).length % 64).toBe((t.data.byteLength) % 64); // header padded to 64 bytes
  });

  it('float64 is converted to float32; v2 headers are read', () => {
    const d = new Float64Array([0.1, -2.5]);
    const t = parseNpy(npyBytes(hdr('<f8', '(2,)'), new Uint8Array(d.buffer)));
    expect(t.dtype).toBe('float32');
    expect(Array.from(t.data as Float32Array)).toEqual([Math.fround(0.1), -2.5]);
    const v2 = parseNpy(npyBytes(hdr('<f4', '(1, 1)'), new Uint8Array(new Float32Array([3]).buffer), 2));
    expect(v2).toMatchObject({ dtype: 'float32', dims: [1, 1] });
  });

  const four = new Uint8Array(16);
  it.each([
    ['bad magic', new Uint8Array([1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 0]), /bad magic, not a \.npy file/],
    ['too short', new Uint8Array([0x93, 0x4e]), /2 bytes is too short/],
    ['header past end', npyBytes(hdr('<f4', '(4,)'), four).subarray(0, 40), /header length \d+ runs past the end/],
    ['truncated data', (() => { const b = npyBytes(hdr('<f4', '(4,)'), four); return b.subarray(0, b.length - 8); })(), /data is 8 bytes, but <f4 shape \[4\] needs 16 \(truncated\?\)/],
    ['trailing bytes', npyBytes(hdr('<f4', '(2,)'), four), /8 trailing bytes/],
    ['bad descr', npyBytes(hdr('<c8', '(2,)'), four), /unsupported dtype descr '<c8'/],
    ['big-endian', npyBytes(hdr('>f4', '(4,)'), four), /'>f4'.*big-endian/],
    ['fortran order', npyBytes(hdr('<f4', '(2, 2)', 'True'), four), /fortran_order=True is not supported/],
    ['no shape', npyBytes("{'descr': '<f4', 'fortran_order': False, }", four), /header lacks 'shape'/],
    ['bad shape', npyBytes(hdr('<f4', '(a, 2)'), four), /bad shape entry 'a'/],
    ['version', (() => { const b = npyBytes(hdr('<f4', '(4,)'), four); b[6] = 9; return b; })(), /unsupported \.npy format version 9/],
  ])('rejects %s', (_w, bytes, msg) => {
    expect(() => parseNpy(bytes, 'X.npy')).toThrow(msg);
  });

  it('file errors name the path; bfloat16 cannot be written', () => {
    expect(() => readNpy(join(dir, 'missing.npy'))).toThrow(/cannot read \.npy file .*missing\.npy/);
    const p = join(dir, 'bad.npy');
    writeFileSync(p, 'hello world!');
    expect(() => readNpy(p)).toThrow(/\.npy file .*bad\.npy: bad magic/);
    expect(() => encodeNpy({ dtype: 'bfloat16', dims: [1], data: new Uint16Array(1) })).toThrow(/cannot write dtype bfloat16/);
    expect(() => encodeNpy({ dtype: 'float32', dims: [3], data: new Float32Array(2) })).toThrow(/needs 3 elements, data has 2/);
  });
});
