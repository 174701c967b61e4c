// The one way weights files are opened: safetensors, or an official PyTorch checkpoint (.pth, torch.save zip) read
// directly, told apart by their first bytes rather than their names. Both give the same read-on-demand surface.
import { closeSync, openSync, readSync } from 'node:fs';
import { PthFile } from './pth.ts';
import { SafetensorsFile, type StDType } from './safetensors.ts';

export interface TensorReader {
  readonly path: string;
  /** tensor names, sorted */
  readonly names: string[];
  has(name: string): boolean;
  info(name: string): { dtype: StDType; shape: number[] };
  /** the tensor as float32, contiguous row-major */
  readFloat32(name: string): Float32Array;
  close(): void;
}

export type TensorFileFormat = 'safetensors' | 'pth';

/** 'pth' for a zip archive (torch.save), 'safetensors' otherwise; a legacy (pre-zip) torch file is refused. */
export function sniffFormat(path: string): TensorFileFormat {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(`cannot open weights file ${path}: ${(e as Error).message}`);
  }
  const head = new Uint8Array(4);
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'pth';
  // a legacy torch.save starts with its magic number pickled: PROTO 2, LONG1 of 10 bytes. Not 0x80 alone: that is
  // also the first byte of a safetensors file whose header length is 128 (mod 256)
  if (head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a && head[3] === 0x0a) {
    throw new Error(`weights file ${path} is a legacy (non-zip) torch pickle, which is not read: re-save it with ` +
      'torch >= 1.6 (torch.save(torch.load(f), f2)) or convert it to safetensors');
  }
  return 'safetensors';
}

export function openTensorFile(path: string): TensorReader {
  return sniffFormat(path) === 'pth' ? PthFile.open(path) : SafetensorsFile.open(path);
}

/** "a", "b", ... (N more): the first `max` names for an error message */
export function listNames(names: string[], max = 20): string {
  return names.slice(0, max).map((s) => `"${s}"`).join(', ') + (names.length > max ? `, ... (${names.length - max} more)` : '');
}

/** Every missing, unexpected, mis-shaped or non-float tensor of `file` against the expected names and shapes. */
export function tensorProblems(file: Pick<TensorReader, 'names' | 'has' | 'info'>, expected: Map<string, readonly number[]>): string[] {
  const problems: string[] = [];
  const missing = [...expected.keys()].filter((k) => !file.has(k));
  const unexpected = file.names.filter((k) => !expected.has(k));
  for (const [k, shape] of expected) {
    if (!file.has(k)) continue;
    const info = file.info(k);
    if (info.shape.length !== shape.length || info.shape.some((x, i) => x !== shape[i])) {
      problems.push(`tensor "${k}" has shape [${info.shape.join(',')}], config expects [${shape.join(',')}]`);
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) problems.push(`tensor "${k}" has dtype ${info.dtype}, expected F32, F16 or BF16`);
  }
  if (missing.length) problems.push(`missing ${missing.length} tensor${missing.length > 1 ? 's' : ''}: ${listNames(missing)}`);
  if (unexpected.length) problems.push(`unexpected ${unexpected.length} tensor${unexpected.length > 1 ? 's' : ''}: ${listNames(unexpected)}`);
  return problems;
}
