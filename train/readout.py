"""What a checkpoint's network still knows of the clean clip at three depths: the best linear read-out (least squares,
fitted on 1024 clips, measured on 256 others) of each token's clean values from the patch embedding, from the middle
block's output and from the input of the output head, as the fraction of the clips' variance it leaves, next to the
network's own clean-clip prediction. A read-out that leaves much at n = 1, where the input is all but clean, means
that the layer has already dropped detail that the output would need (a square's corners, a triangle's tip).
Black backgrounds only, so the object is all of the variance.
    python3 train/readout.py CKPT_OR_MODEL_FOLDER [more ...] [--levels 1,50,200]
"""
import argparse

import torch

import world
from train import alphas_cumprod, clip_tokens, load_model, ridge_fit


@torch.no_grad()
def layers(net, te, seed, clips, n):
    """(features per layer [tokens, D], clean tokens, unexplained fraction of the network's own prediction)"""
    caps = {}
    hooks = [net.patch_embed.register_forward_hook(lambda m, i, o: caps.__setitem__('embedding', o)),
             net.mid_block.register_forward_hook(lambda m, i, o: caps.__setitem__('middle', o[:, net.extras:])),
             net.decoder_pred.register_forward_hook(lambda m, i, o: caps.__setitem__('head input', i[0][:, net.extras:]))]
    g = torch.Generator().manual_seed(seed)
    scenes = world.sample_scenes(g, clips, world.train_combos())
    for s in scenes:
        s['background'] = None
    x0 = world.render_channels(scenes, net.cfg['in_chans'])
    ids = torch.tensor([world.tokenize(world.prompt(s['colour'], s['shape'], s['motion'])) for s in scenes])
    a = torch.tensor(alphas_cumprod(), dtype=torch.float32)[n]
    out = net(a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=g), torch.full((clips,), n), te(ids))
    for h in hooks:
        h.remove()
    D = net.decoder_pred.in_features
    return {k: v.reshape(-1, D).double() for k, v in caps.items()}, clip_tokens(net, x0).double(), ((out - x0).pow(2).mean() / x0.var()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('paths', nargs='+')
    ap.add_argument('--levels', default='1,50,200')
    a = ap.parse_args()
    torch.set_num_threads(2)
    print('| weights | n | network | embedding | middle | head input |')
    print('|---|---|---|---|---|---|')
    for path in a.paths:
        net, te, world.LATENT_STD = load_model(path)
        for n in (int(v) for v in a.levels.split(',')):
            fit, y, _ = layers(net, te, 1, 1024, n)
            test, yt, own = layers(net, te, 2, 256, n)
            row = [f'{own:.3f}']
            for k in ('embedding', 'middle', 'head input'):
                sol = ridge_fit(fit[k], y, 1e-4)
                pred = test[k] @ sol[:-1] + sol[-1]
                row.append(f'{((pred - yt).pow(2).mean() / yt.var()).item():.3f}')
            print(f'| {path} | {n} | ' + ' | '.join(row) + ' |')


if __name__ == '__main__':
    main()
