"""The shape decoder: a small learned decoder for latents with shape masks (train.py --shape-masks).

The latent clip is [C = 3 + len(SHAPES), F, S, S]: the low-resolution RGB video, then one channel per shape holding
the object's coverage (world.render(masks=True)). The decoder first interpolates it linearly in time to the output
frame rate (half-pixel centres, edge-clamped, as the fixed decoder does), then draws each frame:

    frame = bilinear_x8(mean + std * z[:3])                        the fixed decoder's picture, blurred
          + depth_to_space_8(conv_out(relu(conv_mid(relu(conv_in(z))))))   a learned correction, 8x8 pixels per
                                                                           latent pixel

conv_in and conv_mid are 3x3 (zero padding), conv_out 1x1 to 3 * 8 * 8 channels, rearranged as torch's
pixel_shuffle (ONNX DepthToSpace, mode CRD). The correction sharpens the blurred picture into the shape that the
masks name; everything it needs sits within 3 latent pixels (the receptive field is 7x7), as the object does.
It is trained alone, on rendered clips: the target is the frame the camera films at that output frame
(world.pictures), the input the rendered latent, for half the frames blurred, noised and its masks mixed, so
that it draws from the imperfect latents a diffusion model samples rather than only from exact ones; and for a
fraction of the scenes (--swap) with another shape's outline under the scene's own shape's mask, so that the shape
it draws is the one the mask's channel names (a sampled square's outline comes out round).

    python3 train/decoder.py --out train/runs/dec [--steps N] [--threads T]
--adapt UVIT then continues it (--init) on half rendered latents, half that U-ViT's clean-clip predictions of
rendered clips noised to --adapt-levels (the levels of the sampler's last steps), so that it draws what the sampler
hands it, not only what the renderer does:
    python3 train/decoder.py --out train/runs/dec2 --init train/runs/dec/decoder-N.pt --adapt UVIT_CKPT [--lr LR]
    python3 train/decoder.py --export train/runs/dec/decoder-N.pt [--model-dir models/uvit-t2v-shapes]
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as Fn
from safetensors.torch import load_file, save_file

import world

UP = world.SIZE_OUT // world.S  # 8
TEMPORAL = world.FRAMES_OUT // world.F  # 8


class ShapeDecoder(nn.Module):
    def __init__(self, in_chans, width=64, mid=2, mean=world.LATENT_MEAN, std=2.0):
        super().__init__()
        self.mean, self.std = mean, std
        self.conv_in = nn.Conv2d(in_chans, width, 3, padding=1)
        self.conv_mid = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1) for _ in range(mid)])
        self.conv_out = nn.Conv2d(width, 3 * UP * UP, 1)
        nn.init.zeros_(self.conv_out.weight)  # starts as the fixed decoder
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, z):
        """latent frames [N, C, S, S] -> RGB frames [N, 3, 8S, 8S] (about [0, 1]; the driver clamps). It reads the
        first in_chans channels (RGB and masks); a latent's motion channels after them are the U-ViT's alone."""
        z = z[:, :self.conv_in.in_channels]
        base = Fn.interpolate(z[:, :3] * self.std + self.mean, scale_factor=UP, mode='bilinear', align_corners=False)
        h = torch.relu(self.conv_in(z))
        for c in self.conv_mid:
            h = torch.relu(c(h))
        return base + Fn.pixel_shuffle(self.conv_out(h), UP)

    def clip(self, z):
        """latent clips [B, C, F, S, S] -> RGB clips [B, 3, 8F, 8S, 8S]."""
        B, C, Fr, S, _ = z.shape
        zt = interpolate_time(z)
        frames = self(zt.permute(0, 2, 1, 3, 4).reshape(B * Fr * TEMPORAL, C, S, S))
        return frames.reshape(B, Fr * TEMPORAL, 3, S * UP, S * UP).permute(0, 2, 1, 3, 4)


def interpolate_time(z):
    """[B, C, F, S, S] -> [B, C, 8F, S, S]: linear in time, half-pixel centres, edge-clamped."""
    return Fn.interpolate(z, scale_factor=(TEMPORAL, 1, 1), mode='trilinear', align_corners=False)


def blur(z, sigma):
    """A separable Gaussian blur of each latent frame, sigma [N] in latent pixels (0: unchanged)."""
    k = torch.arange(-2, 3, dtype=z.dtype)
    w = torch.exp(-k[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    w = w / w.sum(1, keepdim=True)  # [N, 5]
    N, C, S, _ = z.shape
    zp = Fn.pad(z, (2, 2, 2, 2), mode='replicate')
    rows = sum(w[:, i, None, None, None] * zp[:, :, i:i + S, :] for i in range(5))
    return sum(w[:, i, None, None, None] * rows[:, :, :, i:i + S] for i in range(5))


@torch.no_grad()
def predicted(adapt, x0, scenes, gen):
    """The U-ViT's clean-clip prediction of rendered clips noised to a random level of adapt['levels'], with the
    prompt and classifier-free guidance (x0 + w (x0 - x0 of the empty prompt), which for an x0-predicting network is
    the sampler's guidance of the noise): what the sampler's last steps hand the decoder. Guidance overshoots the
    masks (a sampled mask reaches 1.5-2x the coverage), which rendered latents never show."""
    net, te, abar, (lo, hi), w = adapt['net'], adapt['te'], adapt['abar'], adapt['levels'], adapt['guidance']
    n = torch.randint(lo, hi + 1, (len(scenes),), generator=gen)
    a = abar[n].view(-1, 1, 1, 1, 1)
    xn = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=gen)
    ids = torch.tensor([world.tokenize(world.prompt(s['colour'], s['shape'], s['motion'], s['background'])) for s in scenes])
    empty = torch.tensor([world.tokenize('')] * len(scenes))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cond, unc = net(xn, n, te(ids)).float(), net(xn, n, te(empty)).float()
    return cond + w * (cond - unc)


def swapped(gen, scenes, x0, p):
    """x0 with, for a fraction p of the scenes, the outline of another shape at the same place and size (in the RGB
    channels and in the mask) while the mask stays in the scene's own shape's channel: the decoder must then take
    the shape from which channel holds the mask, not from the outline, which is what a sampled square needs (its
    mask is in the square's channel but its outline comes out round)."""
    pick = torch.rand(len(scenes), generator=gen) < p
    other = torch.randint(len(world.SHAPES) - 1, (len(scenes),), generator=gen)
    idx = [i for i in range(len(scenes)) if pick[i]]
    if not idx:
        return x0
    alt = []
    for i in idx:
        shapes = [s for s in world.SHAPES if s != scenes[i]['shape']]
        alt.append(dict(scenes[i], shape=shapes[int(other[i])]))
    xa = world.render(alt, masks=True)
    out = x0.clone()
    for k, i in enumerate(idx):
        out[i, :3] = xa[k, :3]
        out[i, 3:] = 0
        out[i, 3 + world.SHAPES.index(scenes[i]['shape'])] = xa[k, 3:].sum(0)
    return out


def batch(gen, scenes_per_batch, frames_per_scene, adapt=None, swap=0.0):
    """(noisy, blurred latent frames [N, C, S, S], target pictures [N, 3, 128, 128]) for random output frames. With
    `adapt`, half of the scenes' latents are the U-ViT's predictions instead of the rendered ones; with `swap`, that
    fraction of them carry another shape's outline (swapped())."""
    scenes = world.sample_scenes(gen, scenes_per_batch, world.all_combos())
    x0 = world.render(scenes, masks=True)
    if swap:
        x0 = swapped(gen, scenes, x0, swap)
    if adapt:
        half = scenes_per_batch // 2
        x0 = torch.cat([x0[:half], predicted(adapt, x0[half:], scenes[half:], gen)])
    z = interpolate_time(x0)  # [n, C, 128, S, S]
    idx = torch.randint(world.FRAMES_OUT, (scenes_per_batch, frames_per_scene), generator=gen)
    zf = torch.stack([z[i, :, idx[i]].transpose(0, 1) for i in range(scenes_per_batch)]).flatten(0, 1)
    target = world.pictures(scenes, idx, supersample=2).flatten(0, 1)
    N, K = zf.shape[0], len(world.SHAPES)
    # half the frames exact, half spoiled as a sampled latent may be: blurred (sigma up to 0.8 latent pixels), the
    # masks scaled (0.6-1.4) and up to 40 % of their mass spread over the other shapes (the shape named by the
    # largest mask is drawn), and noisy (up to 0.04, about a tenth of an object's contrast)
    spoil = (torch.rand(N, generator=gen) < 0.5).float()
    zf = blur(zf, spoil * 0.8 * torch.rand(N, generator=gen))
    cover = zf[:, 3:].sum(1, keepdim=True)  # the object's coverage, whichever channel holds it
    mix = (spoil * 0.4 * torch.rand(N, generator=gen))[:, None]
    spread = torch.rand(N, K, generator=gen)
    weights = (1 - mix) * (zf[:, 3:].amax((2, 3)) > 0).float() + mix * spread / spread.sum(1, keepdim=True)
    gain = 1 + spoil * 0.4 * (2 * torch.rand(N, generator=gen) - 1)
    zf = torch.cat([zf[:, :3], cover * (gain[:, None] * weights)[:, :, None, None]], 1)
    zf = zf + (spoil * 0.04 * torch.rand(N, generator=gen))[:, None, None, None] * torch.randn(zf.shape, generator=gen)
    return zf, target


def load_decoder(path, mean=world.LATENT_MEAN, std=2.0):
    """A ShapeDecoder in eval mode from an exported decoder.safetensors or a training checkpoint (decoder-N.pt; its
    width and depth from the tensors)."""
    sd = torch.load(path, map_location='cpu')['decoder'] if path.endswith('.pt') else load_file(path)
    sd = {k: v.float() for k, v in sd.items()}
    w = sd['conv_in.weight']
    mid = len({k.split('.')[1] for k in sd if k.startswith('conv_mid.')})
    dec = ShapeDecoder(w.shape[1], w.shape[0], mid, mean, std).eval()
    dec.load_state_dict(sd)
    return dec


def export(ckpt, model_dir):
    ck = torch.load(ckpt, map_location='cpu')
    group = os.path.join(model_dir, 'group.json')
    if os.path.exists(group):  # the TS build takes mean and std from group.json (train/export.py writes the U-ViT's)
        dec = json.load(open(group))['build']['decoder']
        if (dec.get('mean'), dec.get('std')) != (world.LATENT_MEAN, ck['latent_std']):
            raise SystemExit(f"{group}: the decoder normalisation {dec.get('mean')}, {dec.get('std')} is not the one "
                             f"this decoder was trained on ({world.LATENT_MEAN}, {ck['latent_std']})")
    sd = {k: v.contiguous() for k, v in ck['decoder'].items()}
    save_file(sd, os.path.join(model_dir, 'decoder.safetensors'), metadata={'step': str(ck['step'])})
    print(f"exported decoder step {ck['step']} to {model_dir}: {sum(v.numel() for v in sd.values())} parameters")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out')
    ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--scenes', type=int, default=16, help='scenes per batch')
    ap.add_argument('--frames', type=int, default=8, help='random output frames per scene')
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--width', type=int, default=64)
    ap.add_argument('--latent-std', type=float, default=2.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--ckpt-every', type=int, default=500)
    ap.add_argument('--export', metavar='CKPT', help='write CKPT as decoder.safetensors into --model-dir and exit')
    ap.add_argument('--model-dir', default='models/uvit-t2v-shapes')
    ap.add_argument('--init', help='start from this decoder checkpoint')
    ap.add_argument('--swap', type=float, default=0.3, help='fraction of scenes drawn with another shape\'s outline '
                    'under their own shape\'s mask (swapped())')
    ap.add_argument('--adapt', metavar='UVIT', help='train half of each batch on this U-ViT\'s (checkpoint or model '
                    'folder) clean-clip predictions of rendered clips noised to --adapt-levels')
    ap.add_argument('--adapt-levels', default='1-60')
    ap.add_argument('--adapt-guidance', type=float, default=3.0, help='the sampler\'s guidance scale')
    a = ap.parse_args()
    if a.export:
        return export(a.export, a.model_dir)
    if not a.out:
        ap.error('--out is required to train')
    world.LATENT_STD = a.latent_std
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    dec = ShapeDecoder(3 + len(world.SHAPES), a.width, std=a.latent_std)
    if a.init:
        dec.load_state_dict(torch.load(a.init, map_location='cpu')['decoder'])
    adapt = None
    if a.adapt:
        from train import alphas_cumprod, load_model  # the U-ViT only for --adapt
        net, te, std = load_model(a.adapt)
        if std != a.latent_std:
            ap.error(f'--adapt {a.adapt} has latent std {std}, the decoder {a.latent_std}')
        adapt = dict(net=net, te=te, abar=torch.tensor(alphas_cumprod(), dtype=torch.float32),
                     levels=tuple(int(v) for v in a.adapt_levels.split('-')), guidance=a.adapt_guidance)
    opt = torch.optim.Adam(dec.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed + 1)
    log = open(os.path.join(a.out, 'log.jsonl'), 'w')
    t0, acc, cnt = time.time(), 0.0, 0
    for step in range(a.steps):
        for g in opt.param_groups:
            g['lr'] = a.lr * min(1.0, (step + 1) / 100) * (1 - step / a.steps)
        z, target = batch(gen, a.scenes, a.frames, adapt, a.swap)
        loss = (dec(z) - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc, cnt = acc + loss.item(), cnt + 1
        if (step + 1) % 25 == 0:
            log.write(json.dumps(dict(step=step + 1, loss=acc / cnt, wall_s=round(time.time() - t0, 1))) + '\n')
            log.flush()
            acc, cnt = 0.0, 0
        if (step + 1) % a.ckpt_every == 0 or step + 1 == a.steps:
            state = dict(step=step + 1, latent_std=a.latent_std, decoder=dec.state_dict())
            torch.save(state, os.path.join(a.out, f'decoder-{step + 1}.pt'))


if __name__ == '__main__':
    main()
