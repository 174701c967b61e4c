// Demo set-up and wiring: make the demo's files if missing (seeded random U-ViT weights by init-weights, the seeded
// untrained text encoder and decoder ONNX files), and build a Driver around the in-process engine.
// Nothing is downloaded: every file comes from a seed.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../engine/engine.ts';
import { initWeightsToFile } from '../model/initWeights.ts';
import { LatentDecoder } from '../driver/decoder.ts';
import { buildDemoDecoder, buildDemoTextEncoder } from './models.ts';
import { Driver, engineForward, type Forward } from '../driver/driver.ts';
import { loadGroupConfig, type LoadedGroupConfig } from '../serve/groupConfig.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';
import { PromptEncoder } from '../driver/text/encoder.ts';

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

/** Creates whichever of weights / text encoder / decoder files are missing, from the config's `demo` seeds. */
export function prepareDemo(cfg: LoadedGroupConfig, log: (s: string) => void = () => {}): PreparedFile[] {
  const d = cfg.demo;
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
  make(cfg.weights, 'U-ViT weights', () => {
    mkdirSync(dirname(cfg.weights), { recursive: true });
    const tmp = `${cfg.weights}.tmp-${process.pid}`;
    initWeightsToFile(cfg.uvit, d!.weights_seed, tmp);
    renameSync(tmp, cfg.weights);
  });
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
  let engine: Engine | undefined;
  let forward = opts.forward;
  if (!forward) {
    engine = await Engine.create({
      config: cfg.uvit,
      weightsPath: cfg.weights,
      threads: cfg.engine.threads,
      ep: cfg.engine.ep,
      deviceId: cfg.engine.device_id,
    });
    forward = engineForward(engine);
  }
  const textEncoder = await PromptEncoder.create(cfg.text_encoder, cfg.text_encoder.ep ?? cfg.engine);
  const decoder = await LatentDecoder.create(cfg.decoder, cfg.decoder.ep ?? cfg.engine);
  const driver = new Driver({ model: cfg.uvit, forward, textEncoder, decoder, metrics: opts.metrics });
  return {
    driver,
    cfg,
    loadMs: performance.now() - t0,
    async close() {
      await textEncoder.release();
      await decoder.release();
      await engine?.release();
    },
  };
}
