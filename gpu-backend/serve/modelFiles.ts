// A backend group's model files, made ready before anything loads them: the U-ViT weights, the text encoder and the
// decoder ONNX files. A shipped trained model (the config's `build` section) gets its text encoder and decoder built
// here; every other file must exist, or be made by the makers the caller hands in (the demo's seeded random ones,
// demo/demo.ts: serve/ never imports demo/, so the production path does not depend on demo code). Nothing is
// downloaded.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { buildInterpolationDecoder } from '../driver/interpolationDecoder.ts';
import { buildShapeDecoder } from '../driver/shapeDecoder.ts';
import { makeTokenizer } from '../driver/text/encoder.ts';
import { WordTokenizer } from '../driver/text/tokenizer.ts';
import { buildWordTextEncoder } from '../driver/text/wordEncoder.ts';
import type { LoadedGroupConfig } from './groupConfig.ts';

export interface PreparedFile {
  path: string;
  made: boolean;
  ms: number;
}

/** Makers of missing files (seeded random, untrained); each writes its file to `tmp`, which then replaces the file. */
export interface MissingFileMakers {
  weights(tmp: string): void;
  textEncoder(tmp: string): void;
  decoder(tmp: string): void;
}

/** Writes through a temporary file beside `path`, so that a reader never meets half a file. */
function writeAtomic(path: string, write: (tmp: string) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  write(tmp);
  renameSync(tmp, path);
}

/**
 * Makes the group's model files. A missing file is made by `makers` (the demo's, for a config with `demo` seeds) or
 * refused. A shipped trained model (`build`) has committed weights; its text encoder and decoder ONNX (the fixed
 * interpolation decoder, or the shape decoder from its committed tensors) are built on every call and written only
 * when the bytes differ, so a re-exported model never meets a stale cached graph.
 */
export function prepareModelFiles(cfg: LoadedGroupConfig, log: (s: string) => void = () => {}, makers?: MissingFileMakers): PreparedFile[] {
  const b = cfg.build;
  const out: PreparedFile[] = [];
  const make = (path: string, what: string, maker: ((tmp: string) => void) | undefined) => {
    if (existsSync(path)) {
      out.push({ path, made: false, ms: 0 });
      return;
    }
    if (!maker) throw new Error(`${what} ${path} is missing and the group config has no "demo" seeds to make it`);
    const t0 = performance.now();
    log(`making ${what} ${path} (seeded random, untrained)`);
    writeAtomic(path, maker);
    out.push({ path, made: true, ms: performance.now() - t0 });
  };
  const build = (path: string, what: string, fn: () => Uint8Array) => {
    const t0 = performance.now();
    const bytes = fn();
    const same = existsSync(path) && Buffer.from(bytes).equals(readFileSync(path));
    if (!same) {
      log(`building ${what} ${path}`);
      writeAtomic(path, (tmp) => writeFileSync(tmp, bytes));
    }
    out.push({ path, made: !same, ms: performance.now() - t0 });
  };
  make(cfg.weights, 'U-ViT weights', makers?.weights);
  if (b) {
    const tok = makeTokenizer(cfg.text_encoder);
    if (!(tok instanceof WordTokenizer)) throw new Error('a built text encoder takes the word tokenizer ("tokenizer": {"type": "words"})');
    build(cfg.text_encoder.onnx, 'text encoder', () =>
      buildWordTextEncoder({ tensors: b.text_encoder, numTokens: cfg.text_encoder.num_tokens, dim: cfg.text_encoder.dim, vocab: tok.vocabSize }));
    const d = b.decoder;
    if (cfg.decoder.layout !== 'video') throw new Error(`the ${d.type} decoder has the video layout`);
    const spec = {
      channels: cfg.uvit.in_chans,
      size: cfg.uvit.img_size,
      temporal: cfg.decoder.temporal,
      spatial: cfg.decoder.spatial,
      mean: d.mean,
      std: d.std,
    };
    if (d.type === 'shape-decoder') build(cfg.decoder.onnx, 'shape decoder', () => buildShapeDecoder({ ...spec, weights: d.weights, reads: d.channels }));
    else build(cfg.decoder.onnx, 'interpolation decoder', () => buildInterpolationDecoder(spec));
    return out;
  }
  make(cfg.text_encoder.onnx, 'text encoder', makers?.textEncoder);
  make(cfg.decoder.onnx, 'latent decoder', makers?.decoder);
  return out;
}
