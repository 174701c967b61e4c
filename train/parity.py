"""Reference data for the TypeScript tests. For the parity test (tests/parity/shapes-model.test.ts), inputs and
outputs of the PyTorch training model from the shipped model files:
  prompts.json, ids.npy      the word tokenizer's ids for a few prompts (incl. the empty one and an unknown word)
  context.npy                the text encoder's output for them
  x.npy, t.npy, out.npy      one U-ViT forward: seeded latents, sampling-style float times, contexts 0 and 1
  z.npy, decoded.npy         the fixed decoder on a small latent (torch trilinear interpolation, half-pixel,
                             then the inverse latent normalisation; also the shape decoder's first term)
  decoder_z.npy, decoder_frames.npy  for a model whose latent has shape masks, the shape decoder (train/decoder.py)
                             on a seeded latent of 2 frames: its output frames 0, 5, 10 and 15
and for the clip detector's test (tests/unit/shapes-detector.test.ts), ground truth:
  gt_latents.npy, gt.json    rendered latent clips (every shape x motion once, colours and backgrounds cycling) and
                             their scene parameters
    python3 train/parity.py [--model models/uvit-t2v-shapes] [--out tests/fixtures/shapes]
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as Fn
import world
from decoder import load_decoder
from train import load_model

PROMPTS = ['a red triangle moving up', '', 'a Yellow ball, bouncing on a gray background!', 'a purple ball moving left']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='models/uvit-t2v-shapes')
    ap.add_argument('--out', default='tests/fixtures/shapes')
    a = ap.parse_args()
    torch.set_num_threads(1)
    vocab = json.load(open(os.path.join(a.model, 'vocab.json')))
    assert vocab == world.VOCAB
    dec = json.load(open(os.path.join(a.model, 'group.json')))['build']['decoder']
    assert dec['mean'] == world.LATENT_MEAN, 'group.json decoder mean != world.py normalisation'
    net, te, world.LATENT_STD = load_model(a.model)  # the shipped model's latent std (train.py --latent-std)
    cfg = net.cfg
    C, masks = cfg['in_chans'], cfg['in_chans'] > 3
    assert masks == (dec['type'] == 'shape-decoder'), 'a latent with shape masks needs the shape decoder'
    os.makedirs(a.out, exist_ok=True)
    save = lambda name, arr: np.save(os.path.join(a.out, name), np.ascontiguousarray(arr))
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        ids = torch.tensor([world.tokenize(p) for p in PROMPTS])
        ctx = te(ids)
        x = torch.randn(2, C, cfg['num_frames'], cfg['img_size'], cfg['img_size'], generator=g)
        ts = torch.tensor([900.0999755859375, 37.5], dtype=torch.float32)
        out = net(x, ts, ctx[:2])
        z = torch.rand(1, 3, 3, 4, 4, generator=g) * 2 - 1
        decoded = Fn.interpolate(z, scale_factor=(8, 4, 4), mode='trilinear', align_corners=False)
        decoded = decoded * world.LATENT_STD + world.LATENT_MEAN
        if masks:
            shape_decoder = load_decoder(os.path.join(a.model, dec['weights']), dec['mean'], dec['std'])
            dz = torch.randn(1, C, 2, cfg['img_size'], cfg['img_size'], generator=g) * 0.3
            dframes = shape_decoder.clip(dz)[:, :, [0, 5, 10, 15]]
    scenes = world.sample_scenes(torch.Generator().manual_seed(7), 15, world.all_combos())
    for i, sc in enumerate(scenes):
        sc.update(colour=list(world.COLOURS)[i % 5], shape=world.SHAPES[i % 3], motion=world.MOTIONS[i // 3],
                  background=[None, 'gray'][i % 2])
    save('gt_latents.npy', world.render_channels(scenes, C).numpy())
    json.dump(scenes, open(os.path.join(a.out, 'gt.json'), 'w'), indent=1)
    json.dump(PROMPTS, open(os.path.join(a.out, 'prompts.json'), 'w'), indent=1)
    save('ids.npy', ids.numpy().astype(np.int64))
    save('context.npy', ctx.numpy())
    save('x.npy', x.numpy())
    save('t.npy', ts.numpy())
    save('out.npy', out.numpy())
    save('z.npy', z.numpy())
    save('decoded.npy', decoded.numpy())
    if masks:
        save('decoder_z.npy', dz.numpy())
        save('decoder_frames.npy', dframes.numpy())
    print(f'wrote {a.out}: network output max abs {out.abs().max():.3f}')


if __name__ == '__main__':
    main()
