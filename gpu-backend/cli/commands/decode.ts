// uvit decode: latents -> images with the KL autoencoder, as the official FrozenAutoencoderKL.decode(z) (it divides by
// the scale factor itself: 0.18215, or --scale-factor); writes the raw decoder output, float32 [B, 3, 8h, 8w] (about
// [-1, 1]).
import type { Tensor } from '../../../shared/tensor.ts';
import { writeNpy } from '../../model/npy.ts';
import { intValue, numberValue, str, UsageError, type Command } from '../command.ts';
import { readFloat32, requireFile, requireOutputDir, shapeStr } from '../io.ts';

export const decodeCommand: Command = {
  name: 'decode',
  summary: 'decode latents with the Stable Diffusion KL autoencoder (autoencoder_kl.pth), as libs/autoencoder.py',
  usage: 'decode --autoencoder autoencoder_kl.(pth|safetensors) --latents Z.npy --out X.npy [--threads K] [--ep cpu|cuda] [--device-id K]',
  options: {
    autoencoder: { type: 'string', value: 'A.pth', required: true, help: 'autoencoder_kl.pth of the official release (or its safetensors conversion)' },
    latents: { type: 'string', value: 'Z.npy', required: true, help: 'latents [B,4,h,w] float32, as sampled (scaled by 0.18215)' },
    out: { type: 'string', value: 'X.npy', required: true, help: 'decoded images [B,3,8h,8w] float32 (raw decoder output)' },
    threads: { type: 'string', value: 'K', help: 'ONNX Runtime intra-op threads (default: ORT decides)' },
    ep: { type: 'string', value: 'EP', choices: ['cpu', 'cuda'], default: 'cpu', help: 'execution provider' },
    'device-id': { type: 'string', value: 'K', default: '0', help: 'CUDA device ordinal (with --ep cuda)' },
    'scale-factor': { type: 'string', value: 'S', help: 'latent scale factor (default 0.18215; the MS-COCO models use 0.23010)' },
    config: { type: 'string', value: 'AE.json', help: 'another autoencoder configuration: {"ddconfig": {...}, "embed_dim": N, "scale_factor": S} (default: autoencoder_kl.pth\'s)' },
  },
  async run(v, ctx) {
    const t0 = performance.now();
    const aePath = requireFile('autoencoder', str(v.autoencoder)!);
    const z = readFloat32('latents', str(v.latents)!);
    if (z.dims.length !== 4) {
      throw new Error(`--latents: shape mismatch: ${str(v.latents)} has shape ${shapeStr(z.dims)}, expected [B,4,h,w]`);
    }
    const out = requireOutputDir('out', str(v.out)!);
    const { Autoencoder } = await import('../../engine/autoencoder.ts');
    const { readAutoencoderConfig } = await import('../../model/build/autoencoder.ts');
    const { OFFICIAL_AUTOENCODER } = await import('../../model/build/autoencoder.ts');
    const base = str(v.config) === undefined ? OFFICIAL_AUTOENCODER : readAutoencoderConfig(requireFile('config', str(v.config)!));
    const scale = numberValue('decode', 'scale-factor', v['scale-factor']);
    if (scale !== undefined && !(scale > 0)) throw new UsageError(`uvit decode: --scale-factor must be > 0, got ${scale}`);
    const ae = await Autoencoder.open(aePath, {
      config: scale === undefined ? base : { ...base, scale_factor: scale },
      threads: intValue('decode', 'threads', v.threads),
      ep: str(v.ep) as 'cpu' | 'cuda',
      deviceId: intValue('decode', 'device-id', v['device-id'], 0),
    });
    try {
      const tLoad = performance.now();
      const x: Tensor<'float32'> = await ae.decode(z);
      writeNpy(out, x);
      ctx.log(`decode: ${shapeStr(z.dims)} -> ${shapeStr(x.dims)} -> ${out} (load ${(tLoad - t0).toFixed(0)} ms, decode ${(performance.now() - tLoad).toFixed(0)} ms)`);
    } finally {
      await ae.release();
    }
  },
};

