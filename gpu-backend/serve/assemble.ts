// The one place a Driver is put together: the group config's text encoder and latent decoder (on its own thread, so
// that decoding one clip does not stall the sampling of the others) around a forward
// function (a Backend's: the in-process engine or the stage pipeline). `uvit serve`, the demo and the tests use it.
import { DecoderThread } from '../driver/decodeThread.ts';
import { Driver, type Forward } from '../driver/driver.ts';
import { Launcher } from '../driver/launcher.ts';
import { PromptEncoder } from '../driver/text/encoder.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';
import type { LoadedGroupConfig } from './groupConfig.ts';

export interface AssembledDriver {
  driver: Driver;
  /** releases the text encoder and the decoder (the forward's owner releases the network) */
  release(): Promise<void>;
}

export async function assembleDriver(cfg: LoadedGroupConfig, forward: Forward, metrics?: DriverMetrics): Promise<AssembledDriver> {
  const textEncoder = await PromptEncoder.create(cfg.text_encoder, cfg.text_encoder.ep ?? cfg.engine);
  let decoder: DecoderThread;
  try {
    // One intra-op thread unless the config says otherwise: decodes overlap the sampling of other clips, so the cores
    // are busy anyway, and a second thread waiting on a busy core made a 128-frame decode 2-6x slower (docs/measurements.md).
    decoder = await DecoderThread.create(cfg.decoder, cfg.decoder.ep ?? { ...cfg.engine, threads: 1 });
  } catch (e) {
    await textEncoder.release();
    throw e;
  }
  // ffmpeg is started from a small helper process: a fork of the driver itself would make its memory fault back in
  const launcher = Launcher.start();
  return {
    driver: new Driver({ model: cfg.uvit, forward, textEncoder, decoder, prediction: cfg.sampler.prediction, metrics, launch: launcher.launch }),
    async release() {
      launcher.close();
      await textEncoder.release();
      await decoder.release();
    },
  };
}
