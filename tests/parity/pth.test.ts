// Official .pth checkpoints read in TypeScript: torch.save files of the official model classes on seeded weights
// (tests/fixtures/pth/make.py) -> uvit convert / direct loading -> the engine's forward equals torch's (1e-4).
// Strided, offset and shared storages read like torch holds them; hostile pickles are refused, never executed.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { Engine, type ForwardInputs } from '../../gpu-backend/engine/engine.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { convertToSafetensors } from '../../gpu-backend/model/convert.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { PyDict, unpickle } from '../../gpu-backend/model/pickle.ts';
import { PthFile } from '../../gpu-backend/model/pth.ts';
import { SafetensorsFile } from '../../gpu-backend/model/safetensors.ts';
import { openTensorFile } from '../../gpu-backend/model/tensorFile.ts';
import { expectedParams, loadWeights } from '../../gpu-backend/model/weights.ts';
import { maxAbsDiff } from './referenceUtil.ts';

const DIR = resolve(import.meta.dirname, '../fixtures/pth');
const f = (n: string) => join(DIR, n);
const tmp = mkdtempSync(join(tmpdir(), 'uvit-pth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Case { name: string; dtype: 'F32' | 'F16' | 'BF16'; config: Record<string, unknown>; inputs: string[] }
const cases = JSON.parse(readFileSync(f('cases.json'), 'utf8')) as Case[];

function inputsOf(c: Case): ForwardInputs {
  const inp: ForwardInputs = { x: readNpy(f(`${c.name}.x.npy`)) as Tensor<'float32'>, timesteps: readNpy(f(`${c.name}.t.npy`)) as Tensor<'float32'> };
  if (c.inputs.includes('y')) inp.y = readNpy(f(`${c.name}.y.npy`)) as Tensor<'int64'>;
  if (c.inputs.includes('context')) inp.context = readNpy(f(`${c.name}.context.npy`)) as Tensor<'float32'>;
  return inp;
}

describe('.pth reader: tensors as torch holds them', () => {
  it('strided, offset, shared-storage, 0-d, empty, F16 and BF16 tensors equal their contiguous copies', () => {
    const pth = PthFile.open(f('views.pth'));
    const st = SafetensorsFile.open(f('views.safetensors'));
    try {
      expect(pth.names).toEqual(st.names);
      expect(pth.info('half_t')).toEqual({ dtype: 'F16', shape: [5, 3] });
      expect(pth.info('bf16_row')).toEqual({ dtype: 'BF16', shape: [6] });
      expect(pth.info('scalar')).toEqual({ dtype: 'F32', shape: [] });
      for (const n of pth.names) {
        expect(pth.info(n).shape, n).toEqual(st.info(n).shape);
        expect(Array.from(pth.readFloat32(n)), n).toEqual(Array.from(st.readFloat32(n)));
      }
      expect(pth.readFloat32('window').length).toBe(6);
    } finally {
      pth.close();
      st.close();
    }
  });

  it('pickle protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL) reads the same', () => {
    const p4 = PthFile.open(f('proto4.pth'));
    const st = SafetensorsFile.open(f('views.safetensors'));
    try {
      expect(p4.names).toEqual(st.names);
      for (const n of p4.names) expect(Array.from(p4.readFloat32(n)), n).toEqual(Array.from(st.readFloat32(n)));
    } finally {
      p4.close();
      st.close();
    }
  });

  it('a storage shorter than its reference, or a view past its storage, is refused at open', () => {
    expect(() => PthFile.open(f('short_storage.pth'))).toThrow(/tensor "[a-z_]+": storage 0 holds 92 bytes, but F32\[24\] needs 96/);
    expect(() => PthFile.open(f('out_of_bounds.pth'))).toThrow(/tensor "window": shape \[2,3\] stride \[6,1\] offset 80 reaches element 88 of a 24-element storage/);
  });

  it('malformed pickles are refused with the byte and the reason', () => {
    const bytes = (...b: Array<number | string>) => Uint8Array.from(b.flatMap((x) => (typeof x === 'string' ? [...Buffer.from(x, 'latin1')] : [x])));
    expect(() => unpickle(bytes(0x80, 2, 0x7d), 'p')).toThrow(/p: pickle byte 3: unexpected end of the pickle \(truncated\?\)/);
    expect(() => unpickle(bytes(0x80, 2, 0x68, 5, 0x2e), 'p')).toThrow(/pickle byte 2: memo key 5 was never stored/);
    expect(() => unpickle(bytes(0x80, 2, 0x73, 0x2e), 'p')).toThrow(/stack underflow/);
    expect(() => unpickle(bytes(0x80, 2, 'cbuiltins\neval\n', 0x2e), 'p')).toThrow(/refused global builtins\.eval/);
    expect(() => unpickle(bytes(0x80, 2, 'ctorch\nFloatStorage\n', 0x29, 0x52, 0x2e), 'p')).toThrow(/torch\.FloatStorage cannot be called/);
    expect(() => unpickle(bytes(0x80, 2, 0x29, 0x51, 0x2e), 'p')).toThrow(/persistent id tuple of 0 is not \('storage', type, key, location, numel\)/);
    expect(unpickle(bytes(0x80, 2, 0x7d, 0x28, 0x58, 1, 0, 0, 0, 'k', 0x8a, 5, 0, 0, 0, 0, 1, 0x75, 0x2e), 'p')).toBeInstanceOf(PyDict);
  });

  it('a truncated archive and a legacy (non-zip) pickle are refused with what is wrong', () => {
    const cut = join(tmp, 'cut.pth');
    copyFileSync(f('cls_f32.pth'), cut);
    truncateSync(cut, 150_000);
    expect(() => openTensorFile(cut)).toThrow(/no end-of-central-directory record \(not a zip archive, or truncated\)/);
    const legacy = join(tmp, 'legacy.pth');
    writeFileSync(legacy, Uint8Array.of(0x80, 0x02, 0x8a, 0x0a));
    expect(() => openTensorFile(legacy)).toThrow(/legacy \(non-zip\) torch pickle/);
  });
});

describe('hostile pickles are refused and nothing runs', () => {
  const marker = 'uvit-pickle-was-executed';
  it.each([
    ['evil_global.pth', /refused global posix\.system: only collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2/],
    ['evil_opcode.pth', /refused opcode INST \(0x69\)/],
  ])('%s', (file, msg) => {
    expect(() => PthFile.open(f(file))).toThrow(msg);
    const out = join(tmp, `${file}.safetensors`);
    expect(() => convertToSafetensors(f(file), out)).toThrow(msg);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial-${process.pid}`)).toBe(false);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(DIR, marker))).toBe(false);
  });
});

describe.each(cases)('official $name ($dtype) checkpoint', (c) => {
  const cfg = parseConfig(c.config);
  const ref = readNpy(f(`${c.name}.out.npy`));
  const engines: Engine[] = [];
  afterAll(async () => {
    for (const e of engines) await e.release();
  });

  it('holds exactly the official parameters, stored as ' + c.dtype, () => {
    const pth = PthFile.open(f(`${c.name}.pth`));
    try {
      const exp = expectedParams(cfg);
      expect(pth.names).toEqual([...exp.keys()].sort());
      for (const [k, shape] of exp) expect(pth.info(k), k).toEqual({ dtype: c.dtype, shape });
    } finally {
      pth.close();
    }
  });

  it('convert -> safetensors (same dtype, same values) -> engine forward equals torch (1e-4)', async () => {
    const out = join(tmp, `${c.name}.safetensors`);
    expect(convertToSafetensors(f(`${c.name}.pth`), out, cfg)).toEqual({ tensors: expectedParams(cfg).size, dtypes: [c.dtype] });
    const st = SafetensorsFile.open(out);
    const pth = PthFile.open(f(`${c.name}.pth`));
    try {
      for (const n of pth.names) {
        expect(st.info(n).dtype).toBe(c.dtype);
        expect(st.readFloat32(n)).toEqual(pth.readFloat32(n));
      }
    } finally {
      st.close();
      pth.close();
    }
    const engine = await Engine.create({ config: cfg, weightsPath: out, threads: 1 });
    engines.push(engine);
    const err = maxAbsDiff((await engine.forward(inputsOf(c))), ref);
    console.log(`${c.name}: converted safetensors vs torch max abs ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
  });

  it('the .pth loads directly wherever weights are read (engine weightsPath, loadWeights)', async () => {
    const engine = await Engine.create({ config: cfg, weightsPath: f(`${c.name}.pth`), threads: 1 });
    engines.push(engine);
    const err = maxAbsDiff((await engine.forward(inputsOf(c))), ref);
    expect(err).toBeLessThanOrEqual(1e-4);
    const w = loadWeights(f(`${c.name}.pth`), cfg, ['pos_embed']);
    expect(w.get('pos_embed')!.dims).toEqual(expectedParams(cfg).get('pos_embed'));
  });

  it('a config that does not match is refused before any output exists', () => {
    const wrong = parseConfig({ ...c.config, depth: (c.config.depth as number) + 2 });
    const out = join(tmp, `${c.name}-wrong.safetensors`);
    expect(() => convertToSafetensors(f(`${c.name}.pth`), out, wrong)).toThrow(/do not match the config: missing \d+ tensors: .*hint: the file has \d in_blocks, config depth \d gives/);
    expect(existsSync(out)).toBe(false);
  });
});
