// The KL autoencoder built by the graph builder against the official libs/autoencoder.py on seeded weights
// (tests/fixtures/autoencoder/make.py: a small channel config with every module kind, saved by torch.save as F16 and
// read here directly): decode at 32x32 latents and encode_moments, batch 2, within 1e-4 max abs.
// UVIT_AUTOENCODER_FIXTURES=DIR runs the same comparison on the full autoencoder_kl.pth configuration written by
// `make.py --full DIR` (too large to commit; see docs/checkpoints.md).
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { Autoencoder } from '../../gpu-backend/engine/autoencoder.ts';
import { autoencoderParams, OFFICIAL_AUTOENCODER, readAutoencoderConfig } from '../../gpu-backend/model/build/autoencoder.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { maxAbsDiff } from './referenceUtil.ts';

const DIR = process.env.UVIT_AUTOENCODER_FIXTURES ?? resolve(import.meta.dirname, '../fixtures/autoencoder');
const cfg = readAutoencoderConfig(join(DIR, 'config.json'));
const npy = (n: string) => readNpy(join(DIR, n)) as Tensor<'float32'>;

let ae: Autoencoder | undefined;
afterAll(async () => ae?.release());

describe('autoencoder (libs/autoencoder.py FrozenAutoencoderKL)', () => {
  it('decode(z) at 32x32 latents, encode_moments(x) and encode(x) equal the official float32 outputs (1e-4)', async () => {
    ae = await Autoencoder.open(join(DIR, 'autoencoder.pth'), { config: cfg, parts: ['decoder', 'encoder'], threads: 1 });
    const dec = await ae.decode(npy('z.npy'));
    const errDec = maxAbsDiff(dec, npy('decoded.npy'));
    const errEnc = maxAbsDiff(await ae.encodeMoments(npy('x.npy')), npy('moments.npy'));
    const errZ = maxAbsDiff(await ae.encode(npy('x.npy'), npy('noise.npy')), npy('encoded.npy'));
    console.log(`autoencoder decode max abs ${errDec.toExponential(2)}, encode_moments ${errEnc.toExponential(2)}, encode ${errZ.toExponential(2)}`);
    expect(errZ).toBeLessThanOrEqual(1e-4);
    const z = npy('z.npy').dims;
    expect(dec.dims).toEqual([z[0], 3, z[2] * 2 ** (cfg.ch_mult.length - 1), z[3] * 2 ** (cfg.ch_mult.length - 1)]);
    expect(errDec).toBeLessThanOrEqual(1e-4);
    expect(errEnc).toBeLessThanOrEqual(1e-4);
  });

  it('the official configuration has the state_dict of autoencoder_kl.pth (248 tensors, 83.65M parameters)', () => {
    const p = autoencoderParams(OFFICIAL_AUTOENCODER);
    const count = [...p.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect(p.size).toBe(248);
    expect(count).toBe(83_653_863);
    expect(p.get('decoder.up.3.block.0.conv1.weight')).toEqual([512, 512, 3, 3]);
    expect(p.get('decoder.up.1.block.0.nin_shortcut.weight')).toEqual([256, 512, 1, 1]);
    expect(p.get('encoder.down.2.downsample.conv.weight')).toEqual([512, 512, 3, 3]);
  });

  it('a weights file of another configuration is refused, naming what differs', async () => {
    const small = resolve(import.meta.dirname, '../fixtures/autoencoder/autoencoder.pth');
    await expect(Autoencoder.open(small)).rejects.toThrow(/do not match the autoencoder configuration: tensor "encoder.conv_in.weight" has shape \[32,3,3,3\], config expects \[128,3,3,3\].*missing/);
  });
});
