// PyTorch checkpoints (torch.save of a state_dict, the zip format of torch >= 1.6) read without Python: the zip's
// <prefix>/data.pkl is run through the restricted unpickler (pickle.ts), and each tensor is read on demand from its
// storage entry <prefix>/data/<key> (F32, F16, BF16; any strides and offsets, storages shared between tensors).
// At open every tensor is checked to lie inside its storage, so a malformed file fails before any data is used.
import { bf16ToF32, f16ToF32 } from '../../shared/halfFloat.ts';
import { PyDict, type PyTensor, unpickle } from './pickle.ts';
import { ZipFile } from './zip.ts';

const ELEM_SIZE = { F32: 4, F16: 2, BF16: 2 } as const;
/** a state_dict's pickle holds names and shapes only (U-ViT-H/2: ~40 KB); anything far larger is not one */
const MAX_PICKLE_BYTES = 64 << 20;

// A TensorReader (tensorFile.ts returns it as one, which checks the shape); no import back, which would be a cycle.
export class PthFile {
  readonly path: string;
  readonly names: string[];
  #zip: ZipFile;
  #prefix: string;
  #tensors: Map<string, PyTensor>;

  private constructor(path: string, zip: ZipFile, prefix: string, tensors: Map<string, PyTensor>) {
    this.path = path;
    this.#zip = zip;
    this.#prefix = prefix;
    this.#tensors = tensors;
    this.names = [...tensors.keys()].sort();
  }

  static open(path: string): PthFile {
    const zip = ZipFile.open(path);
    try {
      const w = `checkpoint ${path}`;
      const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pkls.length !== 1) {
        throw new Error(`${w}: expected one <name>/data.pkl entry (a torch.save zip checkpoint), found ${pkls.length}`);
      }
      const prefix = pkls[0].slice(0, -'data.pkl'.length);
      if (zip.entries.has(`${prefix}byteorder`)) {
        const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`));
        if (order !== 'little') throw new Error(`${w}: byteorder is "${order}", only little-endian checkpoints are read`);
      }
      const pklSize = zip.entries.get(pkls[0])!.size;
      if (pklSize > MAX_PICKLE_BYTES) throw new Error(`${w}: ${pkls[0]} is ${pklSize} bytes, over the ${MAX_PICKLE_BYTES} a state_dict pickle needs`);
      const root = unpickle(zip.read(pkls[0]), `${w} (${pkls[0]})`);
      if (!(root instanceof PyDict)) throw new Error(`${w}: the pickle is not a state_dict (a dict of tensors)`);
      const tensors = new Map<string, PyTensor>();
      for (const [k, v] of root.map) {
        if (typeof k !== 'string') throw new Error(`${w}: state_dict key ${k} is not a string`);
        if (v === null || typeof v !== 'object' || !('kind' in v) || v.kind !== 'tensor') {
          throw new Error(`${w}: state_dict entry "${k}" is not a tensor (a nested dict or other object: save the model's ` +
            'state_dict() itself)');
        }
        checkTensor(zip, prefix, k, v, w);
        tensors.set(k, v);
      }
      return new PthFile(path, zip, prefix, tensors);
    } catch (e) {
      zip.close();
      throw e;
    }
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  info(name: string): { dtype: 'F32' | 'F16' | 'BF16'; shape: number[] } {
    const t = this.#get(name);
    return { dtype: t.storage.dtype, shape: [...t.shape] };
  }

  readFloat32(name: string): Float32Array {
    const t = this.#get(name);
    const es = ELEM_SIZE[t.storage.dtype];
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel === 0) return new Float32Array(0);
    // the span of storage elements the view touches, read in one piece
    const last = t.offset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0);
    const bytes = this.#zip.read(`${this.#prefix}data/${t.storage.key}`, t.offset * es, (last - t.offset + 1) * es);
    const span = decode(t.storage.dtype, bytes);
    if (isContiguous(t.shape, t.stride)) return span;
    const out = new Float32Array(numel);
    const idx = new Array<number>(t.shape.length).fill(0);
    for (let i = 0; i < numel; i++) {
      let o = 0;
      for (let d = 0; d < idx.length; d++) o += idx[d] * t.stride[d];
      out[i] = span[o];
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  close(): void {
    this.#zip.close();
  }

  #get(name: string): PyTensor {
    const t = this.#tensors.get(name);
    if (!t) throw new Error(`checkpoint ${this.path}: no tensor "${name}"`);
    return t;
  }
}

function checkTensor(zip: ZipFile, prefix: string, name: string, t: PyTensor, w: string): void {
  const entry = zip.entries.get(`${prefix}data/${t.storage.key}`);
  const es = ELEM_SIZE[t.storage.dtype];
  const what = `${w}: tensor "${name}"`;
  if (!entry) throw new Error(`${what}: storage entry ${prefix}data/${t.storage.key} is missing`);
  if (entry.size !== t.storage.numel * es) {
    throw new Error(`${what}: storage ${t.storage.key} holds ${entry.size} bytes, but ${t.storage.dtype}[${t.storage.numel}] needs ${t.storage.numel * es}`);
  }
  if (t.shape.some((d) => d === 0)) return;
  const last = t.offset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0);
  if (last >= t.storage.numel) {
    throw new Error(`${what}: shape [${t.shape}] stride [${t.stride}] offset ${t.offset} reaches element ${last} of a ` +
      `${t.storage.numel}-element storage`);
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

function decode(dtype: 'F32' | 'F16' | 'BF16', bytes: Uint8Array): Float32Array {
  const n = bytes.length / ELEM_SIZE[dtype];
  if (dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return dtype === 'F16' ? f16ToF32(h) : bf16ToF32(h);
}
