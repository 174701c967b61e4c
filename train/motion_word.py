"""Does a checkpoint's clean-clip prediction follow the motion word, where the object's track is decided? Rendered
clips of the four moving motions (black background) are noised to each level n and predicted twice: with their own
prompt, and with the motion word turned a quarter (left -> up -> right -> down -> left). It prints, per level, how
often the prediction's track goes the prompt's way, and with the turned word how often it goes the word's way and how
often the input's. A network that used the word fully would follow it wherever the input does not yet show the
track; one that ignores it follows the input or neither.

The track is the wrap-aware centroid of the object's mass per latent frame (the shape masks' channels, or the RGB
channels of a latent without them); its direction is the sign of the larger of its net x and y travel.
    python3 train/motion_word.py CKPT_OR_MODEL_FOLDER [--levels 900,800,700,600,500] [--clips 48]
"""
import argparse
import math

import numpy as np
import torch

import world
from train import alphas_cumprod, load_model

TURN = {'moving left': 'moving up', 'moving up': 'moving right', 'moving right': 'moving down',
        'moving down': 'moving left'}


def direction(x):
    """The motion word of one latent clip [C, F, S, S]'s track."""
    mass = (x[3:3 + len(world.SHAPES)] if x.shape[0] > 3 else x[:3]).clamp(min=0).sum(0).double()
    side = mass.shape[-1]
    phase = torch.exp(2j * math.pi * (torch.arange(side, dtype=torch.float64) + 0.5) / side)
    track = lambda profile: np.unwrap(torch.angle((profile * phase).sum(-1)).numpy()) / (2 * math.pi)
    xs, ys = track(mass.sum(1)), track(mass.sum(2))  # [F] each: column and row centroids, in frames
    dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
    if abs(dx) >= abs(dy):
        return 'moving right' if dx > 0 else 'moving left'
    return 'moving down' if dy > 0 else 'moving up'


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('weights')
    ap.add_argument('--levels', default='900,800,700,600,500')
    ap.add_argument('--clips', type=int, default=48)
    ap.add_argument('--seed', type=int, default=11)
    a = ap.parse_args()
    torch.set_num_threads(2)
    net, te, world.LATENT_STD = load_model(a.weights)
    g = torch.Generator().manual_seed(a.seed)
    scenes = world.sample_scenes(g, a.clips, [c for c in world.all_combos() if c[2] in TURN])
    for sc in scenes:
        sc['background'] = None
    x0 = world.render_channels(scenes, net.cfg['in_chans'])
    own = [sc['motion'] for sc in scenes]
    print(f'clean clips read right: {np.mean([direction(x) == m for x, m in zip(x0, own)]):.2f}')
    ctx = lambda words: te(torch.tensor([world.tokenize(world.prompt(sc['colour'], sc['shape'], w))
                                         for sc, w in zip(scenes, words)]))
    turned = [TURN[m] for m in own]
    right, wrong = ctx(own), ctx(turned)
    abar = torch.tensor(alphas_cumprod(), dtype=torch.float32)
    share = lambda pred, words: np.mean([direction(p) == w for p, w in zip(pred, words)])
    print('| n | own word: goes its way | turned word: goes the word\'s way | turned word: goes the input\'s way |\n'
          '|---|---|---|---|')
    for n in (int(v) for v in a.levels.split(',')):
        xn = abar[n].sqrt() * x0 + (1 - abar[n]).sqrt() * torch.randn(x0.shape, generator=g)
        t = torch.full((len(scenes),), n)
        pr, pw = net(xn, t, right), net(xn, t, wrong)
        print(f'| {n} | {share(pr, own):.2f} | {share(pw, turned):.2f} | {share(pw, own):.2f} |', flush=True)


if __name__ == '__main__':
    main()
