"""How much of a real clip a checkpoint recovers at each noise level: the data prediction
x0^ = (x_n - sqrt(1 - abar_n) eps^) / sqrt(abar_n) from freshly rendered clips noised to n, reported as the fraction of
the clips' variance left unexplained (mean |x0^ - x0|^2 / var(x0); 1.0 = no better than predicting the mean pixel).
High noise is where a sample's layout is decided: a model that leaves most of the variance there draws no object.
The first row is a reference that knows the prompt but not the place: each clip predicted by the mean of 64 other
clips of the same prompt and background (it leaves the same fraction at every n).
    python3 train/noise_levels.py train/runs/NAME/ckpt-K.pt [more checkpoints ...] [--clips 32] [--seed 5]
Each checkpoint's clips are rendered with the latent normalisation it was trained with (its latent_std; --latent-std
for a checkpoint that does not record it).
"""
import argparse

import torch

import world
from model import TextEncoder, UViTVideo
from train import alphas_cumprod, eps_of

LEVELS = (200, 400, 600, 800, 900, 1000)
DEFAULT_STD = world.LATENT_STD  # checkpoints from before train.py --latent-std


def test_clips(clips, seed, in_chans=3):
    g = torch.Generator().manual_seed(seed)
    scenes = world.sample_scenes(g, clips, world.train_combos())
    return g, scenes, world.render_channels(scenes, in_chans)


def prompt_only(clips, seed):
    _, scenes, x0 = test_clips(clips, seed)
    g = torch.Generator().manual_seed(seed + 1)
    means = []
    for s in scenes:
        others = world.sample_scenes(g, 64, [(s['colour'], s['shape'], s['motion'])])
        for o in others:
            o['background'] = s['background']
        means.append(world.render(others).mean(0))
    return ((torch.stack(means) - x0).pow(2).mean() / x0.var()).item()


@torch.no_grad()
def unexplained(path, clips, seed, latent_std=None):
    ck = torch.load(path, map_location='cpu')
    world.LATENT_STD = latent_std or ck.get('latent_std', DEFAULT_STD)
    net = UViTVideo(ck['config']).eval()
    net.load_state_dict(ck['net'])
    te = TextEncoder(len(ck['vocab']), world.NUM_TOKENS, ck['config']['clip_dim']).eval()
    te.load_state_dict(ck['text'])
    g, scenes, x0 = test_clips(clips, seed, ck['config']['in_chans'])
    ctx = te(torch.tensor([world.tokenize(world.prompt(s['colour'], s['shape'], s['motion'], s['background']))
                           for s in scenes]))
    abar = torch.tensor(alphas_cumprod(), dtype=torch.float32)
    out = []
    for n in LEVELS:
        eps = torch.randn(x0.shape, generator=g)
        a = abar[n]
        xn = a.sqrt() * x0 + (1 - a).sqrt() * eps
        eps_hat = eps_of(ck.get('prediction', 'eps'), net(xn, torch.full((clips,), n), ctx), xn, a)
        pred = (xn - (1 - a).sqrt() * eps_hat) / a.sqrt()
        out.append(((pred - x0).pow(2).mean() / x0.var()).item())
    return ck['step'], out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ckpts', nargs='+')
    ap.add_argument('--clips', type=int, default=32)
    ap.add_argument('--seed', type=int, default=5)
    ap.add_argument('--latent-std', type=float, help='the latent normalisation, for checkpoints that do not record it')
    a = ap.parse_args()
    torch.set_num_threads(1)
    print('| checkpoint | step | ' + ' | '.join(f'n = {n}' for n in LEVELS) + ' |')
    print('|---|---|' + '---|' * len(LEVELS))
    print('| prompt only, no place | - | ' + ' | '.join([f'{prompt_only(a.clips, a.seed):.2f}'] * len(LEVELS)) + ' |')
    for path in a.ckpts:
        step, fr = unexplained(path, a.clips, a.seed, a.latent_std)
        print(f'| {path} | {step} | ' + ' | '.join(f'{f:.2f}' for f in fr) + ' |')


if __name__ == '__main__':
    main()
