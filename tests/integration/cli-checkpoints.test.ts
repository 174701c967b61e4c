// The checkpoint commands of `uvit`, in process: convert (.pth -> safetensors, refusals leave no file), --weights
// taking a .pth directly, decode with the KL autoencoder, and sample --solver dpm-solver-fast.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { float32 } from '../../shared/tensor.ts';
import { createSession } from '../../gpu-backend/engine/session.ts';
import { main } from '../../gpu-backend/cli/main.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { SafetensorsFile } from '../../gpu-backend/model/safetensors.ts';
import { maxAbsDiff } from '../parity/referenceUtil.ts';

const FIX = resolve(import.meta.dirname, '../fixtures');
const pth = (f: string) => join(FIX, 'pth', f);
const dir = mkdtempSync(join(tmpdir(), 'uvit-cli-ckpt-'));
const p = (f: string) => join(dir, f);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function uvit(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

const cases = JSON.parse(readFileSync(pth('cases.json'), 'utf8')) as Array<{ name: string; config: Record<string, unknown> }>;
const cls = cases.find((c) => c.name === 'cls_f32')!;

describe('uvit convert', () => {
  it('converts an official .pth, checked against an inline JSON config', async () => {
    const r = await uvit('convert', '--in', pth('cls_f32.pth'), '--out', p('cls.safetensors'), '--config', JSON.stringify(cls.config));
    expect(r.stderr).toMatch(/convert: \d+ tensors \(F32\), match the config ->/);
    expect(r.code).toBe(0);
    const f = SafetensorsFile.open(p('cls.safetensors'));
    expect(f.names).toContain('label_emb.weight');
    f.close();
  });

  it.each([
    ['a foreign global', pth('evil_global.pth'), [], /refused global posix\.system/],
    ['a foreign opcode', pth('evil_opcode.pth'), [], /refused opcode INST/],
    ['an official config it does not match', pth('cls_f32.pth'), ['--config', 'imagenet256_uvit_huge'], /do not match the config: .*hint: the file has 1 in_blocks, config depth 28 gives 14/],
    ['an unknown config name', pth('cls_f32.pth'), ['--config', 'imagenet256_uvit_tiny'], /unknown official config "imagenet256_uvit_tiny"/],
  ])('refuses %s: exit 1, no output file', async (_what, input, extra, msg) => {
    const out = p('refused.safetensors');
    const r = await uvit('convert', '--in', input, '--out', out, ...extra);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(msg);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial-${process.pid}`)).toBe(false);
  });
});

describe('--weights takes a .pth', () => {
  it('uvit forward on the official checkpoint equals torch', async () => {
    writeFileSync(p('cls.json'), JSON.stringify(cls.config));
    const r = await uvit('forward', '--config', p('cls.json'), '--weights', pth('cls_f32.pth'), '--x', pth('cls_f32.x.npy'),
      '--t', pth('cls_f32.t.npy'), '--y', pth('cls_f32.y.npy'), '--out', p('eps.npy'), '--threads', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(maxAbsDiff(readNpy(p('eps.npy')), readNpy(pth('cls_f32.out.npy')))).toBeLessThanOrEqual(1e-4);
  });

  it('uvit export splits it into stage models', async () => {
    const r = await uvit('export', '--config', p('cls.json'), '--weights', pth('cls_f32.pth'), '--stages', '2', '--partition', 'sequential', '--out', p('plan'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(join(p('plan'), 'plan.json'));
    expect(JSON.parse(readFileSync(join(p('plan'), 'plan.json'), 'utf8')).plan.numStages).toBe(2);
  });

  it('uvit sample --solver dpm-solver-fast runs the continuous-time solver on it', async () => {
    const r = await uvit('sample', '--config', p('cls.json'), '--weights', pth('cls_f32.pth'), '--z-init', pth('cls_f32.x.npy'),
      '--y', pth('cls_f32.y.npy'), '--steps', '4', '--solver', 'dpm-solver-fast', '--guidance', '0.4', '--out', p('x0.npy'), '--threads', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 1\/4 t=999\.0000/);
    expect(readNpy(p('x0.npy')).dims).toEqual([2, 3, 8, 8]);
  });
});

describe('uvit decode', () => {
  const ae = (f: string) => join(FIX, 'autoencoder', f);
  it('decodes latents as FrozenAutoencoderKL.decode (autoencoder configuration given)', async () => {
    const r = await uvit('decode', '--autoencoder', ae('autoencoder.pth'), '--config', ae('config.json'), '--latents', ae('z.npy'), '--out', p('img.npy'), '--threads', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(maxAbsDiff(readNpy(p('img.npy')), readNpy(ae('decoded.npy')))).toBeLessThanOrEqual(1e-4);
  });

  it('refuses weights of another configuration than autoencoder_kl.pth, naming the difference', async () => {
    const r = await uvit('decode', '--autoencoder', ae('autoencoder.pth'), '--latents', ae('z.npy'), '--out', p('img2.npy'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/do not match the autoencoder configuration: tensor "encoder.conv_in.weight" has shape \[32,3,3,3\], config expects \[128,3,3,3\]/);
    expect(existsSync(p('img2.npy'))).toBe(false);
  });
});

describe('uvit export-clip', () => {
  it('writes the text tower as one ONNX file that equals CLIPTextModel', async () => {
    const clip = (f: string) => join(FIX, 'clip/text', f);
    const r = await uvit('export-clip', '--weights', clip('model.safetensors'), '--config', clip('config.json'), '--out', p('clip.onnx'));
    expect(r.code, r.stderr).toBe(0);
    const s = await createSession(p('clip.onnx'), { threads: 1 });
    try {
      const ids = readNpy(clip('input_ids.npy'));
      const out = (await s.run({ input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.dims) })).last_hidden_state;
      expect(maxAbsDiff(float32([...out.dims], out.data as Float32Array), readNpy(clip('last_hidden_state.npy')))).toBeLessThanOrEqual(1e-4);
    } finally {
      await s.release();
    }
  });
});
