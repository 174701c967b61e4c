// Official-format image checkpoints served end to end, as `npm start -- --model ENTRY --weights-dir DIR` runs them:
// the edge under `wrangler dev` and a backend group of stage processes + driver, started by the same Stack code. The
// weights directory holds .pth files written by torch.save of the official classes on seeded weights
// (tests/fixtures/pth, tests/fixtures/autoencoder) and a seeded CLIP text tower; the official `openai` SDK's
// images.generate makes PNGs, checked with ffprobe and against the reported SHA-256.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { ffprobePath } from '../../gpu-backend/driver/ffmpeg.ts';
import { clipTextParams } from '../../gpu-backend/model/build/clipText.ts';
import { Rng } from '../../gpu-backend/driver/rng.ts';
import { writeSafetensors, type WriteTensor } from '../../gpu-backend/model/safetensors.ts';
import { resolveImageModel } from '../../gpu-backend/serve/catalogue.ts';
import { Stack, defaultOptions } from '../../scripts/startStack.ts';
import { freePort, freePortRange } from '../../scripts/startProcs.ts';

const FIX = resolve(import.meta.dirname, '../fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'uvit-e2e-images-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const pthCase = (name: string) =>
  (JSON.parse(readFileSync(join(FIX, 'pth/cases.json'), 'utf8')) as { name: string; config: Record<string, unknown> }[]).find((c) => c.name === name)!.config;

/** Seeded N(0, 0.02²) tensors of the given names and shapes (LayerNorm-like 1-d weights around 1). */
function seededSafetensors(path: string, params: Map<string, readonly number[]>, seed: number): void {
  const rng = new Rng(seed);
  const tensors = new Map<string, WriteTensor>();
  for (const [name, shape] of params) {
    const data = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)));
    const base = shape.length === 1 && name.endsWith('weight') ? 1 : 0;
    for (let i = 0; i < data.length; i++) data[i] = base + 0.02 * data[i];
    tensors.set(name, { dtype: 'F32', shape: [...shape], data });
  }
  writeSafetensors(path, tensors);
}

function probePng(bytes: Buffer, name: string): { codec_name: string; width: number; height: number } {
  const file = join(tmp, name);
  writeFileSync(file, bytes);
  const r = spawnSync(ffprobePath(), ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', file], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { streams: { codec_name: string; width: number; height: number }[] }).streams[0];
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function withStack<T>(entry: Record<string, unknown>, weightsDir: string, stages: number, fn: (openai: OpenAI, stack: Stack) => Promise<T>): Promise<T> {
  const entryFile = join(tmp, `${entry.id as string}.json`);
  writeFileSync(entryFile, JSON.stringify(entry));
  const stack = new Stack({
    ...defaultOptions(),
    imageModel: entryFile,
    weightsDir,
    stages,
    edgePort: await freePort(),
    stagePort: await freePortRange(stages),
    metricsPort: await freePort(),
    modelDir: join(tmp, 'model'),
    stateDir: join(tmp, `state-${entry.id as string}`),
    log: () => {},
  });
  try {
    await stack.start();
    const { key } = await stack.createKey('e2e-images');
    return await fn(new OpenAI({ apiKey: key, baseURL: `${stack.baseUrl}/v1`, maxRetries: 0, timeout: 240_000 }), stack);
  } finally {
    await stack.stop();
  }
}

describe('image checkpoints through npm start and the openai SDK', () => {
  it('class-conditional pixel model (.pth, 2 stages): n = 2 PNGs of 8x8 by class_label, and a class index as the prompt', async () => {
    const dir = join(tmp, 'weights-class');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(FIX, 'pth/cls_f32.pth'), join(dir, 'cls.pth'));
    const entry = {
      id: 'e2e-class', nnet: pthCase('cls_f32'), solver: 'dpmpp-fast3', steps: 3, guidance: 0.4, resolution: 8,
      files: { nnet: { name: 'cls.pth', sha256: sha(readFileSync(join(dir, 'cls.pth'))) } },
    };
    await withStack(entry, dir, 2, async (openai, stack) => {
      const models = await openai.models.list();
      expect(models.data.find((m) => m.id === 'e2e-class')).toMatchObject({ kind: 'image', conditioning: 'class', num_classes: 10, sizes: ['8x8'] });
      const res = await openai.images.generate({ model: 'e2e-class', prompt: 'a class', n: 2, size: '8x8' as '256x256', class_label: 3, seed: 7 } as OpenAI.ImageGenerateParamsNonStreaming);
      expect(res.data).toHaveLength(2);
      const pngs: Buffer[] = [];
      for (const [i, d] of res.data!.entries()) {
        expect(d.url).toMatch(new RegExp(`^${stack.baseUrl}/cdn/[A-Za-z0-9_-]{22}/\\d+/[0-9a-f]{64}\\.png$`));
        const r = await fetch(d.url!);
        expect(r.headers.get('content-type')).toBe('image/png');
        const png = Buffer.from(await r.arrayBuffer());
        expect(sha(png)).toBe((d as { sha256?: string }).sha256);
        expect(probePng(png, `class-${i}.png`)).toEqual({ codec_name: 'png', width: 8, height: 8 });
        pngs.push(png);
      }
      // image i starts from seed + i: two different images
      expect(pngs[0].equals(pngs[1])).toBe(false);
      // the same request by a class index as the prompt is the same job's parameters: the same first image
      const again = await openai.images.generate({ model: 'e2e-class', prompt: '3', size: '8x8' as '256x256', seed: 7 } as OpenAI.ImageGenerateParamsNonStreaming);
      expect((again.data![0] as { sha256?: string }).sha256).toBe(sha(pngs[0]));
      // no class: a problem naming the field
      await expect(openai.images.generate({ model: 'e2e-class', prompt: 'a cat' } as OpenAI.ImageGenerateParamsNonStreaming)).rejects.toMatchObject({ status: 422 });
    });
  }, 600_000);

  it('text model (F16 .pth, latent, autoencoder_kl-format .pth, seeded CLIP text tower, 1 stage): a 16x16 PNG as b64_json', async () => {
    const dir = join(tmp, 'weights-text');
    mkdirSync(join(dir, 'clip'), { recursive: true });
    copyFileSync(join(FIX, 'pth/t2i_f16.pth'), join(dir, 't2i.pth'));
    copyFileSync(join(FIX, 'autoencoder/autoencoder.pth'), join(dir, 'autoencoder_kl.pth'));
    copyFileSync(join(FIX, 'clip/tokenizer/vocab.json'), join(dir, 'clip/vocab.json'));
    copyFileSync(join(FIX, 'clip/tokenizer/merges.txt'), join(dir, 'clip/merges.txt'));
    const vocab = Object.keys(JSON.parse(readFileSync(join(dir, 'clip/vocab.json'), 'utf8')) as object).length;
    const clip = { vocab_size: vocab, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 5, layer_norm_eps: 1e-5, hidden_act: 'quick_gelu' as const };
    seededSafetensors(join(dir, 'clip/model.safetensors'), new Map([...clipTextParams(clip)].map(([n, s]) => [`text_model.${n}`, s])), 11);
    const ae = JSON.parse(readFileSync(join(FIX, 'autoencoder/config.json'), 'utf8')) as { ddconfig: Record<string, unknown>; scale_factor: number };
    const entry = {
      id: 'e2e-text', nnet: pthCase('t2i_f16'), solver: 'dpmpp-fast3', steps: 3, guidance: 1, resolution: 16,
      autoencoder: { config: ae.ddconfig, scale_factor: ae.scale_factor }, clip,
      files: {
        nnet: { name: 't2i.pth' }, autoencoder: { name: 'autoencoder_kl.pth' },
        clip_weights: { name: 'clip/model.safetensors' }, clip_vocab: { name: 'clip/vocab.json' }, clip_merges: { name: 'clip/merges.txt' },
      },
    };
    await withStack(entry, dir, 1, async (openai) => {
      const res = await openai.images.generate({ model: 'e2e-text', prompt: 'a red bus', size: '16x16' as '256x256', response_format: 'b64_json', seed: 1 } as OpenAI.ImageGenerateParamsNonStreaming);
      expect(res.data).toHaveLength(1);
      const png = Buffer.from(res.data![0].b64_json!, 'base64');
      expect(probePng(png, 'text.png')).toEqual({ codec_name: 'png', width: 16, height: 16 });
      expect(sha(png)).toBe((res.data![0] as { sha256?: string }).sha256);
    });
  }, 600_000);
});

describe('the catalogue names every missing or mismatched file', () => {
  it('missing files, a wrong checksum and a file of another model, all in one error', () => {
    const dir = join(tmp, 'weights-bad');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(FIX, 'pth/t2i_f16.pth'), join(dir, 'cls.pth'));
    const entry = join(tmp, 'bad.json');
    writeFileSync(entry, JSON.stringify({
      id: 'bad', nnet: pthCase('cls_f32'), solver: 'dpmpp-fast3', steps: 3, guidance: 0.4, resolution: 16,
      autoencoder: {}, files: { nnet: { name: 'cls.pth', sha256: '0'.repeat(64) }, autoencoder: { name: 'autoencoder_kl.pth' } },
    }));
    expect(() => resolveImageModel(entry, dir)).toThrow(
      /model bad cannot be served from .*weights-bad:\n {2}cls\.pth \(nnet\) has sha256 [0-9a-f]{64}, the catalogue expects 0{64}(\n {2}cls\.pth \(nnet\) does not match: .*)+\n {2}missing autoencoder_kl\.pth \(autoencoder\)$/);
    expect(() => resolveImageModel('imagenet256_uvit_huge', dir)).toThrow(/missing imagenet256_uvit_huge\.pth \(nnet\)\n {2}missing autoencoder_kl\.pth \(autoencoder\)/);
    expect(() => resolveImageModel('no_such_model', dir)).toThrow(/model "no_such_model" is not in the catalogue .*known: cifar10_uvit_small, .*mscoco_uvit_small_deep\)/);
  });
});
