// Model set-up and wiring: make the demo's files if missing (seeded random U-ViT weights by init-weights, the seeded
// untrained text encoder and decoder ONNX files) or build a shipped trained model's ONNX files from its committed
// tensors, and build a Driver around the in-process engine. Nothing is downloaded.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initWeightsToFile } from '../model/initWeights.ts';
import { buildDemoDecoder, buildDemoTextEncoder } from './models.ts';
import { buildInterpolationDecoder } from '../driver/interpolationDecoder.ts';
import { makeTokenizer } from '../driver/text/encoder.ts';
import { WordTokenizer } from '../driver/text/tokenizer.ts';
import { buildWordTextEncoder } from '../driver/text/wordEncoder.ts';
import type { Driver, Forward } from '../driver/driver.ts';
import { assembleDriver } from '../serve/assemble.ts';
import { inProcessBackend } from '../serve/backend.ts';
import { loadGroupConfig, type LoadedGroupConfig } from '../serve/groupConfig.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';

/** demo.json beside this file */
export const DEMO_CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), 'demo.json');

function writeAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

export interface PreparedFile {
  path: string;
  made: boolean;
  ms: number;
}

/**
 * Makes the group's model files. The demo (`demo` seeds) gets whichever of weights / text encoder / decoder are
 * missing, seeded random and untrained. A shipped trained model (`build`) has committed weights; its text encoder
 * (from the committed tensors) and fixed decoder ONNX are built on every call and written only when the bytes differ,
 * so a re-exported model never meets a stale cached graph.
 */
export function prepareDemo(cfg: LoadedGroupConfig, log: (s: string) => void = () => {}): PreparedFile[] {
  const d = cfg.demo;
  const b = cfg.build;
  const out: PreparedFile[] = [];
  const make = (path: string, what: string, fn: () => void) => {
    if (existsSync(path)) {
      out.push({ path, made: false, ms: 0 });
      return;
    }
    if (!d) throw new Error(`${what} ${path} is missing and the group config has no "demo" seeds to make it`);
    const t0 = performance.now();
    log(`making ${what} ${path} (seeded random, untrained)`);
    fn();
    out.push({ path, made: true, ms: performance.now() - t0 });
  };
  const build = (path: string, what: string, fn: () => Uint8Array) => {
    const t0 = performance.now();
    const bytes = fn();
    const same = existsSync(path) && Buffer.from(bytes).equals(readFileSync(path));
    if (!same) {
      log(`building ${what} ${path}`);
      writeAtomic(path, bytes);
    }
    out.push({ path, made: !same, ms: performance.now() - t0 });
  };
  make(cfg.weights, 'U-ViT weights', () => {
    mkdirSync(dirname(cfg.weights), { recursive: true });
    const tmp = `${cfg.weights}.tmp-${process.pid}`;
    initWeightsToFile(cfg.uvit, d!.weights_seed, tmp);
    renameSync(tmp, cfg.weights);
  });
  if (b) {
    const tok = makeTokenizer(cfg.text_encoder);
    if (!(tok instanceof WordTokenizer)) throw new Error('a built text encoder takes the word tokenizer ("tokenizer": {"type": "words"})');
    build(cfg.text_encoder.onnx, 'text encoder', () =>
      buildWordTextEncoder({ tensors: b.text_encoder, numTokens: cfg.text_encoder.num_tokens, dim: cfg.text_encoder.dim, vocab: tok.vocabSize }));
    if (cfg.decoder.layout !== 'video') throw new Error('the interpolation decoder has the video layout');
    build(cfg.decoder.onnx, 'interpolation decoder', () =>
      buildInterpolationDecoder({
        channels: cfg.uvit.in_chans,
        size: cfg.uvit.img_size,
        temporal: cfg.decoder.temporal,
        spatial: cfg.decoder.spatial,
        mean: b.decoder.mean,
        std: b.decoder.std,
      }));
    return out;
  }
  make(cfg.text_encoder.onnx, 'text encoder', () => {
    if (cfg.text_encoder.tokenizer.type !== 'bytes') throw new Error('the demo text encoder takes the byte tokenizer');
    writeAtomic(cfg.text_encoder.onnx, buildDemoTextEncoder({ numTokens: cfg.text_encoder.num_tokens, dim: cfg.text_encoder.dim, seed: d!.text_encoder_seed }));
  });
  make(cfg.decoder.onnx, 'latent decoder', () => {
    if (cfg.decoder.layout !== 'video') throw new Error('the demo decoder has the video layout');
    writeAtomic(
      cfg.decoder.onnx,
      buildDemoDecoder({
        channels: cfg.uvit.in_chans,
        size: cfg.uvit.img_size,
        temporal: cfg.decoder.temporal,
        spatial: cfg.decoder.spatial,
        hidden: d!.decoder_hidden,
        seed: d!.decoder_seed,
      }),
    );
  });
  return out;
}

export interface BuiltDriver {
  driver: Driver;
  cfg: LoadedGroupConfig;
  close(): Promise<void>;
  /** ms to load the engine, text encoder and decoder */
  loadMs: number;
}

/**
 * A Driver for a group config. `forward` defaults to an in-process Engine (all segments in this process, with the
 * config's `engine` threads / EP); pass the stage pipeline's forward to run on stage processes instead.
 */
export async function createDriver(
  configPath: string,
  opts: { forward?: Forward; metrics?: DriverMetrics; prepare?: boolean; log?: (s: string) => void } = {},
): Promise<BuiltDriver> {
  const t0 = performance.now();
  const cfg = loadGroupConfig(configPath);
  if (opts.prepare !== false) prepareDemo(cfg, opts.log);
  const backend = opts.forward ? undefined : await inProcessBackend(cfg);
  const assembled = await assembleDriver(cfg, opts.forward ?? backend!.forward, opts.metrics).catch(async (e) => {
    await backend?.close();
    throw e;
  });
  return {
    driver: assembled.driver,
    cfg,
    loadMs: performance.now() - t0,
    async close() {
      await assembled.release();
      await backend?.close();
    },
  };
}
