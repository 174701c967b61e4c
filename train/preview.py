"""Preview a checkpoint without the service: DDIM on the training schedule with classifier-free guidance (eta 0:
deterministic; eta 1: ancestral, the noise added back each step),
frames written as a PNG strip per prompt. A quick look while training runs; the real evaluation goes through the
project's engine (npm run eval:prompts).
    python3 train/preview.py train/runs/NAME/ckpt.pt out.png [prompt ...] [--steps 25] [--scale 1] [--eta 0]
--trajectory K instead draws, per prompt, the middle frame of the network's clean-clip prediction x0^ at every K-th
sampler step (left to right from n = 1000): where the sample's objects are decided, and from what.
"""
import argparse

import numpy as np
import torch
from PIL import Image

import world
from model import TextEncoder, UViTVideo
from train import alphas_cumprod, eps_of


@torch.no_grad()
def sample(net, te, prompts, steps, scale, seed, prediction='eps', eta=0.0, x0_preds=None):
    """DDIM from pure noise; x0_preds, if a list, receives each step's (n, clean-clip prediction)."""
    g = torch.Generator().manual_seed(seed)
    abar = torch.tensor(alphas_cumprod(), dtype=torch.float64)
    B = len(prompts)
    ctx = te(torch.tensor([world.tokenize(p) for p in prompts]))
    unc = te(torch.tensor([world.tokenize('')] * B))
    x = torch.randn(B, net.cfg['in_chans'], world.F, world.S, world.S, generator=g)
    ns = np.linspace(1000, 1, steps + 1).round().astype(int)
    for i in range(steps):
        n, m = int(ns[i]), int(ns[i + 1]) if i + 1 < steps else 0
        t = torch.full((B,), n)
        a, b = abar[n], abar[m]
        e = eps_of(prediction, net(x, t, ctx), x, a)
        if scale:
            e = e + scale * (e - eps_of(prediction, net(x, t, unc), x, a))
        x0 = (x - (1 - a).sqrt() * e) / a.sqrt()
        if x0_preds is not None:
            x0_preds.append((n, x0.float()))
        sig = eta * ((1 - b) / (1 - a) * (1 - a / b)).sqrt()
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64) if eta else 0
        x = (b.sqrt() * x0 + (1 - b - sig ** 2).clamp(min=0).sqrt() * e + sig * noise).float()
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ckpt')
    ap.add_argument('out')
    ap.add_argument('prompts', nargs='*')
    ap.add_argument('--steps', type=int, default=25)
    ap.add_argument('--scale', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--eta', type=float, default=0.0)
    ap.add_argument('--trajectory', type=int, default=0, help='draw x0^ at every K-th step instead of the sample')
    a = ap.parse_args()
    ck = torch.load(a.ckpt, map_location='cpu')
    world.LATENT_STD = ck.get('latent_std', world.LATENT_STD)
    net = UViTVideo(ck['config']).eval()
    net.load_state_dict(ck['net'])
    te = TextEncoder(len(ck['vocab']), world.NUM_TOKENS, ck['config']['clip_dim']).eval()
    te.load_state_dict(ck['text'])
    prompts = a.prompts or [world.prompt(*c) for c in world.HELD_OUT] + ['a red ball bouncing', 'a white square moving left']
    x0_preds = []
    x = sample(net, te, prompts, a.steps, a.scale, a.seed, ck.get('prediction', 'eps'), a.eta, x0_preds)
    # the RGB channels (a latent with shape masks has more)
    to_img = lambda z: ((z[:, :3] * world.LATENT_STD + world.LATENT_MEAN).clamp(0, 1) * 255).round().to(torch.uint8)
    if a.trajectory:
        picked = x0_preds[::a.trajectory] + [x0_preds[-1]] * ((len(x0_preds) - 1) % a.trajectory != 0)
        print('columns at n =', ' '.join(str(n) for n, _ in picked))
        cols = [to_img(p[:, :, world.F // 2]) for _, p in picked]  # [B,3,S,S] each
        rows = [torch.cat([c[b] for c in cols], dim=2) for b in range(len(prompts))]
    else:
        img = to_img(x)  # [B,3,F,S,S]
        rows = [torch.cat([img[b, :, k] for k in range(world.F)], dim=2) for b in range(len(prompts))]
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()
    zoom = 6 if a.trajectory else 2
    Image.fromarray(grid).resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST).save(a.out)
    print('\n'.join(prompts))


if __name__ == '__main__':
    main()
