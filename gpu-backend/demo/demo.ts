// The demo's model set-up: makers of the demo's missing files from its seeds (seeded random U-ViT weights by
// init-weights, the seeded untrained text encoder and decoder ONNX files), handed to serve/modelFiles.ts, and a
// Driver around the in-process engine. Nothing is downloaded.
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initWeightsToFile } from '../model/initWeights.ts';
import { buildDemoDecoder, buildDemoTextEncoder } from './models.ts';
import type { Driver, Forward } from '../driver/driver.ts';
import { assembleDriver } from '../serve/assemble.ts';
import { inProcessBackend } from '../serve/backend.ts';
import { loadGroupConfig, type LoadedGroupConfig } from '../serve/groupConfig.ts';
import { prepareModelFiles, type MissingFileMakers } from '../serve/modelFiles.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';

/** demo.json beside this file */
export const DEMO_CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), 'demo.json');

/** Makers of the missing files of a group config with `demo` seeds (seeded random, untrained); none without seeds. */
export function demoFileMakers(cfg: LoadedGroupConfig): MissingFileMakers | undefined {
  const d = cfg.demo;
  if (!d) return undefined;
  return {
    weights: (tmp) => initWeightsToFile(cfg.uvit, d.weights_seed, tmp),
    textEncoder: (tmp) => {
      if (cfg.text_encoder.tokenizer.type !== 'bytes') throw new Error('the demo text encoder takes the byte tokenizer');
      writeFileSync(tmp, buildDemoTextEncoder({ numTokens: cfg.text_encoder.num_tokens, dim: cfg.text_encoder.dim, seed: d.text_encoder_seed }));
    },
    decoder: (tmp) => {
      if (cfg.decoder.layout !== 'video') throw new Error('the demo decoder has the video layout');
      writeFileSync(
        tmp,
        buildDemoDecoder({
          channels: cfg.uvit.in_chans,
          size: cfg.uvit.img_size,
          temporal: cfg.decoder.temporal,
          spatial: cfg.decoder.spatial,
          hidden: d.decoder_hidden,
          seed: d.decoder_seed,
        }),
      );
    },
  };
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
  opts: { forward?: Forward; metrics?: DriverMetrics; log?: (s: string) => void } = {},
): Promise<BuiltDriver> {
  const t0 = performance.now();
  const cfg = loadGroupConfig(configPath);
  prepareModelFiles(cfg, opts.log, demoFileMakers(cfg));
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
