"""Does a checkpoint use the shape word? Rendered clips (12 per shape, black background) are noised to each level n and
predicted with their own prompt and with the shape word swapped for each of the two other shapes. It prints, per level, the
prediction's mean square error with the right word, the mean with the swapped words and their ratio (1.00: the word
is ignored), and the fraction of predictions whose outline reads as the prompt's shape. With --fills-at N it also
prints the median (10th, 90th percentile) outline fill per shape of the clean clips and of the predictions at level N.

The outline is read as the eval's detector reads it (scripts/eval/detector.ts: the object is the pixels at least half
way from the background towards the object's core colour; fill = its area / its wrap-centred bounding box; triangle
< 0.70 <= ball < 0.88 <= square), on every eighth frame of the decoded clip, the majority over frames.
    python3 train/shape_word.py CKPT_OR_MODEL_FOLDER [--levels 700,500,300,100] [--fills-at 1] [--decoder DEC]
"""
import argparse

import numpy as np
import torch

import world
from decoder import load_decoder
from train import alphas_cumprod, load_model


def fills(frames):
    """Outline fills of the object in each visible frame of [T, H, W, 3] uint8 frames."""
    out = []
    for f in frames.astype(np.int32):
        H, W, _ = f.shape
        bg = np.median(f.reshape(-1, 3), 0)
        d = np.abs(f - bg).max(-1)
        rough = d > 60
        if rough.mean() < 0.01:
            continue
        core = np.median(f[rough & (d >= np.quantile(d[rough], 0.75))], 0) - bg
        m = ((f - bg) @ core) / (core @ core) >= 0.5
        if not 0.01 <= m.mean() <= 0.25:
            continue
        ys, xs = np.nonzero(m)
        centre = lambda v, n: np.angle(np.exp(2j * np.pi * (v + 0.5) / n).mean()) / (2 * np.pi) % 1
        m = np.roll(m, (int(round(H / 2 - centre(ys, H) * H)), int(round(W / 2 - centre(xs, W) * W))), (0, 1))
        ys, xs = np.nonzero(m)
        out.append(m.sum() / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)))
    return out


def shape_of(fill):
    return 'triangle' if fill < 0.70 else 'ball' if fill < 0.88 else 'square'


def decoded(x, shape_decoder=None):
    """Latent clips -> every eighth output frame, [B, 16, 128, 128, 3] uint8, as the fixed decoder draws the RGB
    channels or, for a latent with shape masks, as the shape decoder draws it."""
    if shape_decoder is None:
        rgb = (world.LATENT_MEAN + world.LATENT_STD * x[:, :3]).clamp(0, 1)
        up = torch.nn.functional.interpolate(rgb, size=(world.FRAMES_OUT, world.SIZE_OUT, world.SIZE_OUT),
                                             mode='trilinear', align_corners=False)
    else:
        up = shape_decoder.clip(x).clamp(0, 1)
    return (up.permute(0, 2, 3, 4, 1)[:, ::8] * 255).round().byte().numpy()


def read(x, shape_decoder=None):
    out = []
    for frames in decoded(x, shape_decoder):
        v = [shape_of(f) for f in fills(frames)]
        out.append(max(world.SHAPES, key=v.count) if v else None)  # ties to the first in SHAPES, reproducibly
    return out


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('weights')
    ap.add_argument('--levels', default='700,500,400,300,200,100')
    ap.add_argument('--fills-at', type=int)
    ap.add_argument('--seed', type=int, default=5)
    ap.add_argument('--decoder', help='the shape decoder of a latent with shape masks (a model folder\'s '
                    'decoder.safetensors or a train/decoder.py checkpoint)')
    a = ap.parse_args()
    torch.set_num_threads(2)
    net, te, world.LATENT_STD = load_model(a.weights)
    shapes = world.SHAPES
    g = torch.Generator().manual_seed(a.seed)
    scenes = world.sample_scenes(g, 36, world.all_combos())
    for i, sc in enumerate(scenes):
        sc['shape'], sc['background'] = shapes[i % 3], None
    masks = net.cfg['in_chans'] > 3
    if masks and not a.decoder:
        ap.error('a latent with shape masks needs --decoder (decoder.safetensors or a train/decoder.py checkpoint)')
    dec = load_decoder(a.decoder, std=world.LATENT_STD) if masks else None
    x0 = world.render_channels(scenes, net.cfg['in_chans'])
    abar = torch.tensor(alphas_cumprod(), dtype=torch.float32)
    ctx = lambda k: te(torch.tensor([world.tokenize(world.prompt(
        s['colour'], shapes[(shapes.index(s['shape']) + k) % 3], s['motion'])) for s in scenes]))
    right, swapped = ctx(0), [ctx(1), ctx(2)]

    def predict(n, c):
        xn = abar[n].sqrt() * x0 + (1 - abar[n]).sqrt() * torch.randn(x0.shape, generator=g)
        t = torch.full((len(scenes),), n)
        return [net(xn, t, ci) for ci in c]

    truth = [s['shape'] for s in scenes]
    print(f'clean clips read right: {np.mean([r == s for r, s in zip(read(x0, dec), truth)]):.2f}')
    print('| n | error, right word | error, swapped | ratio | read as the prompt\'s shape |\n|---|---|---|---|---|')
    for n in (int(v) for v in a.levels.split(',')):
        pr, *pw = predict(n, [right, *swapped])
        e_right = ((pr - x0) ** 2).mean().item()
        e_swap = np.mean([((p - x0) ** 2).mean().item() for p in pw])
        ok = np.mean([r == s for r, s in zip(read(pr, dec), truth)])
        print(f'| {n} | {e_right:.5f} | {e_swap:.5f} | {e_swap / e_right:.3f} | {ok:.2f} |')
    if a.fills_at:
        (pr,) = predict(a.fills_at, [right])
        for name, x in (('clean clips', x0), (f'predictions at n = {a.fills_at}', pr)):
            by = {s: [] for s in shapes}
            for s, frames in zip(truth, decoded(x, dec)):
                by[s].extend(fills(frames))
            print(f'{name}: ' + ', '.join(f'{s} {np.median(v):.3f} ({np.percentile(v, 10):.3f}, {np.percentile(v, 90):.3f})'
                                          for s, v in by.items()))


if __name__ == '__main__':
    main()
