// safetensors reader/writer. The reader parses only the header at open and reads each tensor's byte range on demand
// (fs.readSync at an offset), so a pipeline stage holds only the tensors it asks for (memory ≈ its shard).
// Layout: u64 LE header length N, N bytes of JSON header, then the data section; data_offsets are relative to it.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../shared/halfFloat.ts';

export type StDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export const ST_DTYPE_SIZE: Record<StDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface TensorInfo {
  dtype: StDType;
  shape: number[];
  /** absolute offset of the tensor's first byte in the file */
  byteOffset: number;
  byteLength: number;
}

/** safetensors' own limit on the header size (100 MB) */
const MAX_HEADER = 100_000_000;
const CHUNK = 1 << 30;

function readExactly(fd: number, buf: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < buf.length) {
    const len = Math.min(CHUNK, buf.length - done);
    const got = readSync(fd, buf, done, len, position + done);
    if (got === 0) throw new Error(`${what}: unexpected end of file at byte ${position + done} (file truncated?)`);
    done += got;
  }
}

export class SafetensorsFile {
  readonly path: string;
  readonly names: string[];
  readonly metadata: Record<string, string>;
  readonly headerLength: number;
  readonly fileSize: number;
  #fd: number | null;
  #infos: Map<string, TensorInfo>;

  private constructor(path: string, fd: number, fileSize: number, headerLength: number,
    infos: Map<string, TensorInfo>, metadata: Record<string, string>) {
    this.path = path;
    this.#fd = fd;
    this.fileSize = fileSize;
    this.headerLength = headerLength;
    this.#infos = infos;
    this.metadata = metadata;
    this.names = [...infos.keys()].sort();
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new Error(`cannot open safetensors file ${path}: ${(e as Error).message}`);
    }
    try {
      const size = fstatSync(fd).size;
      const w = `safetensors file ${path}`;
      if (size < 8) throw new Error(`${w}: file is ${size} bytes, shorter than the 8-byte header length`);
      const lenBuf = new Uint8Array(8);
      readExactly(fd, lenBuf, 0, w);
      const n64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (n64 > BigInt(size - 8)) {
        throw new Error(`${w}: header length ${n64} runs past the end of the file (${size} bytes; truncated or not a safetensors file?)`);
      }
      const n = Number(n64);
      if (n > MAX_HEADER) throw new Error(`${w}: header length ${n} exceeds the 100 MB limit`);
      if (n < 2) throw new Error(`${w}: header length ${n} is too small for a JSON object`);
      const hb = new Uint8Array(n);
      readExactly(fd, hb, 8, w);
      let header: unknown;
      try {
        header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hb));
      } catch (e) {
        throw new Error(`${w}: header (${n} bytes at offset 8) is not valid JSON: ${(e as Error).message}`);
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header)) {
        throw new Error(`${w}: header must be a JSON object`);
      }
      const dataStart = 8 + n;
      const dataSize = size - dataStart;
      const infos = new Map<string, TensorInfo>();
      let metadata: Record<string, string> = {};
      const ranges: Array<[number, number, string]> = [];
      for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
        if (name === '__metadata__') {
          if (typeof v !== 'object' || v === null || Array.isArray(v) ||
            Object.values(v).some((x) => typeof x !== 'string')) {
            throw new Error(`${w}: __metadata__ must be an object of string values`);
          }
          metadata = v as Record<string, string>;
          continue;
        }
        const t = `${w}: tensor "${name}"`;
        if (typeof v !== 'object' || v === null) throw new Error(`${t}: header entry must be an object`);
        const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        if (typeof e.dtype !== 'string' || !(e.dtype in ST_DTYPE_SIZE)) {
          throw new Error(`${t}: unknown dtype ${JSON.stringify(e.dtype)} (known: ${Object.keys(ST_DTYPE_SIZE).join(', ')})`);
        }
        const dtype = e.dtype as StDType;
        if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
          throw new Error(`${t}: shape ${JSON.stringify(e.shape)} must be an array of non-negative integers`);
        }
        const shape = e.shape as number[];
        const off = e.data_offsets;
        if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
          off[0] > off[1]) {
          throw new Error(`${t}: data_offsets ${JSON.stringify(off)} must be [begin, end] with 0 <= begin <= end`);
        }
        const [b, end] = off as [number, number];
        const want = shape.reduce((a, d) => a * d, 1) * ST_DTYPE_SIZE[dtype];
        if (end - b !== want) {
          throw new Error(`${t}: data_offsets [${b},${end}] span ${end - b} bytes, but ${dtype} shape ` +
            `[${shape.join(',')}] needs ${want}`);
        }
        if (end > dataSize) {
          throw new Error(`${t}: data_offsets [${b},${end}] run past the end of the data section ` +
            `(${dataSize} bytes after the ${n}-byte header; file truncated?)`);
        }
        infos.set(name, { dtype, shape, byteOffset: dataStart + b, byteLength: end - b });
        if (end > b) ranges.push([b, end, name]);
      }
      ranges.sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < ranges.length; i++) {
        if (ranges[i][0] < ranges[i - 1][1]) {
          throw new Error(`${w}: tensors "${ranges[i - 1][2]}" [${ranges[i - 1][0]},${ranges[i - 1][1]}] and ` +
            `"${ranges[i][2]}" [${ranges[i][0]},${ranges[i][1]}] overlap`);
        }
      }
      return new SafetensorsFile(path, fd, size, n, infos, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  has(name: string): boolean {
    return this.#infos.has(name);
  }

  info(name: string): TensorInfo {
    const i = this.#infos.get(name);
    if (!i) throw new Error(`safetensors file ${this.path}: no tensor "${name}"`);
    return i;
  }

  /** the tensor's raw little-endian bytes */
  readBytes(name: string): Uint8Array {
    const i = this.info(name);
    if (this.#fd === null) throw new Error(`safetensors file ${this.path} is closed`);
    const buf = new Uint8Array(i.byteLength);
    readExactly(this.#fd, buf, i.byteOffset, `safetensors file ${this.path}: tensor "${name}"`);
    return buf;
  }

  /** the tensor as float32 (F16, BF16 and F64 converted) */
  readFloat32(name: string): Float32Array {
    const i = this.info(name);
    const bytes = this.readBytes(name);
    const count = i.byteLength / ST_DTYPE_SIZE[i.dtype];
    switch (i.dtype) {
      case 'F32':
        return new Float32Array(bytes.buffer, 0, count);
      case 'F16':
        return f16ToF32(new Uint16Array(bytes.buffer, 0, count));
      case 'BF16':
        return bf16ToF32(new Uint16Array(bytes.buffer, 0, count));
      case 'F64':
        return Float32Array.from(new Float64Array(bytes.buffer, 0, count));
      default:
        throw new Error(`safetensors file ${this.path}: tensor "${name}" has dtype ${i.dtype}, expected a float ` +
          `(F32, F16, BF16 or F64)`);
    }
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}

export type WriteDType = 'F32' | 'F16' | 'BF16';
export interface WriteTensor {
  dtype: WriteDType;
  shape: number[];
  data: Float32Array;
}

function encode(dtype: WriteDType, data: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const h = dtype === 'F16' ? f32ToF16(data) : f32ToBf16(data);
  return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
}

/**
 * Streaming writer: the header (names sorted, data laid out in sorted order, `__metadata__` first, space-padded so
 * the data starts at a multiple of 8) is written at creation; tensors are then written one by one in any order with
 * positional writes, so a caller never needs the whole model in memory.
 */
export class SafetensorsWriter {
  readonly path: string;
  #fd: number | null;
  #specs: Map<string, { dtype: WriteDType; shape: number[]; offset: number; length: number }>;
  #written = new Set<string>();

  constructor(path: string, specs: Map<string, { dtype: WriteDType; shape: number[] }>,
    metadata: Record<string, string> = {}) {
    this.path = path;
    const names = [...specs.keys()].sort();
    const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
    this.#specs = new Map();
    let off = 0;
    for (const name of names) {
      const s = specs.get(name)!;
      const length = s.shape.reduce((a, d) => a * d, 1) * ST_DTYPE_SIZE[s.dtype];
      header[name] = { dtype: s.dtype, shape: s.shape, data_offsets: [off, off + length] };
      this.#specs.set(name, { ...s, offset: off, length });
      off += length;
    }
    let json = JSON.stringify(header);
    const hb0 = new TextEncoder().encode(json);
    const pad = (8 - ((8 + hb0.length) % 8)) % 8;
    json += ' '.repeat(pad);
    const hb = new TextEncoder().encode(json);
    const prefix = new Uint8Array(8 + hb.length);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(hb.length), true);
    prefix.set(hb, 8);
    this.#fd = openSync(path, 'w');
    this.#dataStart = prefix.length;
    this.#writeAt(prefix, 0);
  }

  #dataStart: number;

  #writeAt(bytes: Uint8Array, position: number): void {
    let done = 0;
    while (done < bytes.length) {
      const len = Math.min(CHUNK, bytes.length - done);
      done += writeSync(this.#fd!, bytes, done, len, position + done);
    }
  }

  write(name: string, data: Float32Array): void {
    const s = this.#specs.get(name);
    if (!s) throw new Error(`safetensors writer ${this.path}: "${name}" was not declared`);
    if (this.#fd === null) throw new Error(`safetensors writer ${this.path} is closed`);
    const bytes = encode(s.dtype, data);
    if (bytes.length !== s.length) {
      throw new Error(`safetensors writer ${this.path}: "${name}" has ${data.length} elements, shape ` +
        `[${s.shape.join(',')}] needs ${s.length / ST_DTYPE_SIZE[s.dtype]}`);
    }
    this.#writeAt(bytes, this.#dataStart + s.offset);
    this.#written.add(name);
  }

  /** close without checking completeness (after an error) */
  abort(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
    const missing = [...this.#specs.keys()].filter((n) => !this.#written.has(n));
    if (missing.length) {
      throw new Error(`safetensors writer ${this.path}: ${missing.length} declared tensors never written: ` +
        missing.slice(0, 10).join(', ') + (missing.length > 10 ? ', ...' : ''));
    }
  }
}

/** Write a whole map of tensors (same layout as the official `safetensors.torch.save_file`). */
export function writeSafetensors(path: string, tensors: Map<string, WriteTensor>,
  metadata?: Record<string, string>): void {
  const specs = new Map<string, { dtype: WriteDType; shape: number[] }>();
  for (const [k, v] of tensors) specs.set(k, { dtype: v.dtype, shape: v.shape });
  const w = new SafetensorsWriter(path, specs, metadata);
  try {
    for (const [k, v] of tensors) w.write(k, v.data);
  } catch (e) {
    w.abort();
    throw e;
  }
  w.close();
}
