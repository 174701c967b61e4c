// .npy read/write (NumPy format v1/v2/v3, little-endian, C order).
// Read: '<f4' float32, '<f2' float16, '<i8' int64, '<i4' int32, '|u1' uint8, and '<f8' float64, which is converted
// to float32 (NumPy's default dtype is float64, so `np.save(np.random.randn(...))` would otherwise be rejected; the
// engine is float32 end to end, so nothing downstream could use the extra precision). Everything else is rejected.
// Write: float32, float16, int64, int32, uint8 (bfloat16 has no .npy dtype).
import { readFileSync, writeFileSync } from 'node:fs';
import { numel, type DType, type Tensor } from '../../shared/tensor.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR_TO_DTYPE: Record<string, { dtype: DType; size: number; f64?: true }> = {
  '<f4': { dtype: 'float32', size: 4 },
  '<f2': { dtype: 'float16', size: 2 },
  '<i8': { dtype: 'int64', size: 8 },
  '<i4': { dtype: 'int32', size: 4 },
  '|u1': { dtype: 'uint8', size: 1 },
  '<f8': { dtype: 'float32', size: 8, f64: true },
};
const DTYPE_TO_DESCR: Partial<Record<DType, string>> = {
  float32: '<f4', float16: '<f2', int64: '<i8', int32: '<i4', uint8: '|u1',
};

/** Parse .npy bytes; `what` names the source in error messages. */
export function parseNpy(buf: Uint8Array, what = 'npy data'): Tensor {
  if (buf.length < 10) throw new Error(`${what}: ${buf.length} bytes is too short for a .npy file (truncated?)`);
  for (let i = 0; i < 6; i++) {
    if (buf[i] !== MAGIC[i]) throw new Error(`${what}: bad magic, not a .npy file (expected \\x93NUMPY)`);
  }
  const major = buf[6];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error(`${what}: truncated header`);
    hlen = dv.getUint32(8, true);
    hstart = 12;
  } else {
    throw new Error(`${what}: unsupported .npy format version ${major}.${buf[7]} (supported: 1, 2, 3)`);
  }
  if (hstart + hlen > buf.length) {
    throw new Error(`${what}: header length ${hlen} runs past the end of the data (${buf.length} bytes; truncated?)`);
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(hstart, hstart + hlen)).trim();
  if (!header.startsWith('{') || !header.endsWith('}')) {
    throw new Error(`${what}: header is not a Python dict literal: ${JSON.stringify(header.slice(0, 80))}`);
  }
  const descrM = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descrM || !fortranM || !shapeM) {
    throw new Error(`${what}: header lacks ${!descrM ? "'descr'" : !fortranM ? "'fortran_order'" : "'shape'"}: ${header}`);
  }
  const descr = descrM[1];
  const spec = DESCR_TO_DTYPE[descr];
  if (!spec) {
    const hint = descr.startsWith('>') ? ' (big-endian data: save as little-endian, e.g. arr.astype("<f4"))' : '';
    throw new Error(`${what}: unsupported dtype descr '${descr}'${hint}; supported: ${Object.keys(DESCR_TO_DTYPE).join(', ')}`);
  }
  if (fortranM[1] === 'True') {
    throw new Error(`${what}: fortran_order=True is not supported; save a C-contiguous array (np.ascontiguousarray)`);
  }
  const parts = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const dims = parts.map((s) => {
    if (!/^\d+L?$/.test(s)) throw new Error(`${what}: bad shape entry '${s}' in header: ${header}`);
    return parseInt(s, 10);
  });
  const n = numel(dims);
  const start = hstart + hlen;
  const need = n * spec.size;
  const have = buf.length - start;
  if (have < need) {
    throw new Error(`${what}: data is ${have} bytes, but ${descr} shape [${dims.join(',')}] needs ${need} (truncated?)`);
  }
  if (have > need) {
    throw new Error(`${what}: ${have - need} trailing bytes after the ${descr} data of shape [${dims.join(',')}]`);
  }
  // copy into a fresh, aligned buffer (Buffer#slice would alias the source)
  const bytes = new Uint8Array(need);
  bytes.set(buf.subarray(start, start + need));
  const ab = bytes.buffer;
  switch (descr) {
    case '<f4':
      return { dtype: 'float32', dims, data: new Float32Array(ab, 0, n) };
    case '<f8':
      return { dtype: 'float32', dims, data: Float32Array.from(new Float64Array(ab, 0, n)) };
    case '<f2':
      return { dtype: 'float16', dims, data: new Uint16Array(ab, 0, n) };
    case '<i8':
      return { dtype: 'int64', dims, data: new BigInt64Array(ab, 0, n) };
    case '<i4':
      return { dtype: 'int32', dims, data: new Int32Array(ab, 0, n) };
    default:
      return { dtype: 'uint8', dims, data: new Uint8Array(ab, 0, n) };
  }
}

/** Encode a tensor as .npy v1 (v2 if the header is too long), header padded to 64 bytes like NumPy. */
export function encodeNpy(t: Tensor): Uint8Array {
  const descr = DTYPE_TO_DESCR[t.dtype];
  if (!descr) throw new Error(`cannot write dtype ${t.dtype} as .npy (supported: ${Object.keys(DTYPE_TO_DESCR).join(', ')})`);
  const n = numel(t.dims);
  if (t.data.length !== n) {
    throw new Error(`cannot write .npy: shape [${t.dims.join(',')}] needs ${n} elements, data has ${t.data.length}`);
  }
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  let prefixLen = 10;
  let total = prefixLen + dict.length + 1;
  if (Math.ceil(total / 64) * 64 - prefixLen > 0xffff) prefixLen = 12;
  total = prefixLen + dict.length + 1;
  const padded = Math.ceil(total / 64) * 64;
  dict += ' '.repeat(padded - total) + '\n';
  const hlen = padded - prefixLen;
  const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(padded + data.length);
  out.set(MAGIC, 0);
  out[6] = prefixLen === 10 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (prefixLen === 10) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  for (let i = 0; i < dict.length; i++) out[prefixLen + i] = dict.charCodeAt(i);
  out.set(data, padded);
  return out;
}

export function readNpy(path: string): Tensor {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read .npy file ${path}: ${(e as Error).message}`);
  }
  return parseNpy(buf, `.npy file ${path}`);
}

export function writeNpy(path: string, t: Tensor): void {
  writeFileSync(path, encodeNpy(t));
}
