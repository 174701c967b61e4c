"""Train the shapes-world text-to-video U-ViT with the official recipe: noise prediction on the discrete
stable-diffusion schedule (integer n in 1..1000, x_n = sqrt(abar_n) x0 + sqrt(1 - abar_n) eps), the empty prompt for
10 % of samples (classifier-free guidance), AdamW, EMA weights. The text encoder is trained jointly.

Deterministic: fixed seeds and a fixed thread count, so the same command gives the same weights.
    python3 train/train.py --out train/runs/NAME [--steps N] [--batch B]
A second phase continues from a checkpoint's (EMA) weights with a fresh optimiser and the learning rate annealed
linearly to zero:
    python3 train/train.py --out train/runs/NAME2 --init train/runs/NAME/ckpt-K.pt --anneal --lr LR --steps N --seed S
Writes NAME/log.jsonl (loss every --log-every steps) and NAME/ckpt-STEP.pt (EMA weights, every --ckpt-every steps
and at the end); train/export.py turns a checkpoint into the shipped model files.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from safetensors.torch import load_file

import world
from model import TextEncoder, UViTVideo

CONFIG = dict(img_size=world.S, patch_size=2, in_chans=3, embed_dim=96, depth=10, num_heads=3, mlp_ratio=4,
              qkv_bias=False, mlp_time_embed=False, conv=True, skip=True, clip_dim=64,
              num_clip_token=world.NUM_TOKENS, num_frames=world.F, temporal_patch_size=4)
# the architecture keys a run may override (--patch-size ...); the defaults above are the first design's, the shipped
# model's options are in docs/training.md
ARCH_KEYS = ('patch_size', 'temporal_patch_size', 'embed_dim', 'depth', 'num_heads')
N_STEPS = 1000
HIGH_NOISE_SPAN = 400  # the default --focus-levels: n = 601..1000


def alphas_cumprod():
    """abar_n for n = 0..1000 (index 0 = no noise), as the official train_t2i_discrete.py Schedule computes it."""
    betas = np.linspace(0.00085 ** 0.5, 0.0120 ** 0.5, N_STEPS, dtype=np.float64) ** 2
    return np.cumprod(np.append(0., betas) * -1 + 1)


def eps_of(prediction, out, x, abar):
    """The noise a network output stands for: eps itself; from v = sqrt(abar) eps - sqrt(1 - abar) x0 as
    eps = sqrt(abar) v + sqrt(1 - abar) x_n; from x0 as eps = (x_n - sqrt(abar) x0) / sqrt(1 - abar) (what the
    engine's sampler/prediction.ts does)."""
    if prediction == 'x0':
        return (x - abar.sqrt() * out) / (1 - abar).sqrt()
    return out if prediction == 'eps' else abar.sqrt() * out + (1 - abar).sqrt() * x


# Per-noise-level loss weights on the noise-prediction error. 'x0-v' is 1/abar_n normalised to mean 1 over n: the
# v-prediction loss written for a noise-predicting network (|v - v^|^2 = |eps - eps^|^2 / abar). Plain eps-MSE gives
# the high-noise levels, where the clip's layout is decided, almost no say: there a data prediction divides the noise
# error by sqrt(abar) (~0.07 at n = 1000). 'x0-v' in turn gives the low-noise levels (fine shape and colour) only ~1/30
# of the say; 'x0-v-capped' caps the weight at 10 (reached at abar = 0.1) as a middle course for the annealing phase.
WEIGHTING = {
    'eps': lambda abar: torch.ones_like(abar),
    'x0-v': lambda abar: (1 / abar) / (1 / abar[1:]).mean(),
    'x0-v-capped': lambda abar: (1 / abar).clamp(max=10) / (1 / abar[1:]).clamp(max=10).mean(),
    # for --prediction x0 (the error is on the clean clip): |v - v^|^2 = |x0 - x0^|^2 / (1 - abar), capped at 10 so
    # that the nearly clean levels, where the network only has to copy its input, do not dominate
    'v-capped': lambda abar: (1 / (1 - abar)).clamp(max=10) / (1 / (1 - abar[1:])).clamp(max=10).mean(),
}


def load_init(path):
    """(U-ViT state_dict, text encoder state_dict) from a checkpoint or an exported model folder (float16 weights
    are widened to float32, so a run continued from the shipped files is reproducible from those files alone)."""
    if not os.path.isdir(path):
        ck = torch.load(path, map_location='cpu')
        return ck['net'], ck['text']
    net = {k: v.float() for k, v in load_file(os.path.join(path, 'weights.safetensors')).items()}
    text = load_file(os.path.join(path, 'text_encoder.safetensors'))
    return net, {('tok_emb.weight' if k == 'tok_emb' else k): v.float() for k, v in text.items()}


def widen_channels(net_sd, cfg):
    """Continue a model trained on fewer latent channels (an RGB model, for --shape-masks): the new channels start
    unseen by the patch embedding (zero columns), predicted as zero (zero rows of decoder_pred) and passed through the
    final conv unmixed (its identity tap), so the widened network computes the old one on the old channels."""
    C, old = cfg['in_chans'], net_sd['patch_embed.proj.weight'].shape[1]
    if old == C:
        return net_sd
    sd, extra = dict(net_sd), C - old
    w = sd['patch_embed.proj.weight']
    sd['patch_embed.proj.weight'] = torch.cat([w, w.new_zeros(w.shape[0], extra, *w.shape[2:])], dim=1)
    for k in ('decoder_pred.weight', 'decoder_pred.bias'):  # rows ordered (pt p1 p2 C): C is the fastest
        v = sd[k].reshape(-1, old, *sd[k].shape[1:])
        sd[k] = torch.cat([v, v.new_zeros(v.shape[0], extra, *v.shape[2:])], dim=1).reshape(-1, *sd[k].shape[1:])
    w, b = sd['final_layer.weight'], sd['final_layer.bias']
    wide = w.new_zeros(C, C, *w.shape[2:])
    wide[:old, :old] = w
    for c in range(old, C):
        wide[c, c, 1, 1, 1] = 1.0
    sd['final_layer.weight'], sd['final_layer.bias'] = wide, torch.cat([b, b.new_zeros(extra)])
    return sd


def load_model(path):
    """(U-ViT, text encoder, latent std) in eval mode from a checkpoint or an exported model folder (the folder's
    config from model.json, its latent std from group.json's decoder build, as train/export.py writes them)."""
    if os.path.isdir(path):
        cfg = json.load(open(os.path.join(path, 'model.json')))
        std = json.load(open(os.path.join(path, 'group.json')))['build']['decoder']['std']
    else:
        ck = torch.load(path, map_location='cpu')
        cfg, std = ck['config'], ck['latent_std']
    net, te = UViTVideo(cfg).eval(), TextEncoder(len(world.VOCAB), cfg['num_clip_token'], cfg['clip_dim']).eval()
    net_sd, text_sd = load_init(path)
    net.load_state_dict(net_sd)
    te.load_state_dict(text_sd)
    return net, te, std


def clip_tokens(net, x0):
    """Clean clips [B, C, F, S, S] as the network's tokens [B * tokens, values]: B C (f pt) (h p1) (w p2) ->
    B (f h w) (pt p1 p2 C), the inverse of UViTVideo.unpatchify."""
    c, B = net.cfg, x0.shape[0]
    pt, p, gr = c['temporal_patch_size'], c['patch_size'], net.grid
    return x0.reshape(B, c['in_chans'], net.frames, pt, gr, p, gr, p).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B * net.frames * gr * gr, -1)


def pca_embed(net, seed, clips=512):
    """Start the patch embedding (a linear map from a token's values to the network's width D) as the projection on
    the D leading principal directions of clean rendered tokens, scaled as PyTorch's default init scales a noise
    input (std 1/sqrt(3) per output). Why: trained from a random start, the embedding keeps what survives the noise
    at most levels, the coarse directions: the best linear read-out of a clean clip from the embedding of the weights
    trained without this leaves 9 % of its variance (train/readout.py), and those weights draw a blob even from a
    clean square or triangle."""
    g = torch.Generator().manual_seed(seed)
    tokens = clip_tokens(net, world.render(world.sample_scenes(g, clips, world.train_combos()))).double()
    _, _, vh = torch.linalg.svd(tokens, full_matrices=False)
    w = net.patch_embed.proj.weight
    with torch.no_grad():
        # rows of vh are in (pt p1 p2 C) order; the conv kernel is [D, C, pt, p, p]
        c = net.cfg
        basis = vh[:w.shape[0]].reshape(-1, c['temporal_patch_size'], c['patch_size'], c['patch_size'], c['in_chans']).permute(0, 4, 1, 2, 3)
        w.copy_(basis.float() / 3 ** 0.5)
        net.patch_embed.proj.bias.zero_()


def identity_head(net):
    """Start the final 3x3x3 conv, the last map of every output and the same at every noise level, as the identity.
    Why: from PyTorch's random init it stays ill-conditioned; in the previous weights it attenuates one colour direction
    by more than 15x at three quarters of the frequencies (train/final_conv.py), so some colours' edges cannot be drawn
    sharp."""
    with torch.no_grad():
        k = torch.zeros_like(net.final_layer.weight)
        for c in range(k.shape[0]):
            k[c, c, 1, 1, 1] = 1
        net.final_layer.weight.copy_(k)
        net.final_layer.bias.zero_()


def ridge_fit(x, y, ridge):
    """Least squares with an intercept: the [features + 1, outputs] map of x [samples, features] to y, ridge-damped."""
    h = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    return torch.linalg.solve(h.T @ h + ridge * torch.eye(h.shape[1], dtype=x.dtype), h.T @ y)


IDENTITY_BIAS = 1.0


def identity_init(net, seed, clips=256):
    """Start the whole network as a copy of its input: the patch embedding on the principal directions (pca_embed),
    every block's residual branches silent (attention and MLP output maps zero), every long skip passing the mean
    of its two inputs ([I/2, I/2]), the output head the least-squares inverse of the embedding through the final
    LayerNorm, and the final conv the identity. Why: with PyTorch's init the five long-skip maps of the output
    blocks are random non-residual linear maps and the eleven blocks add random features on top,
    so the embedded token reaches the head scrambled; design 5 then learns a copy so slowly that its prediction
    from a clean square is still a disk after 18 000 steps (docs/training.md). Here the copy is exact (up to the
    principal directions) at step 0, and training only has to learn the denoising on top of it."""
    pca_embed(net, seed)
    identity_head(net)
    D = net.decoder_pred.in_features
    with torch.no_grad():
        # a constant +-BIAS per feature in every patch token keeps the final LayerNorm's scale nearly the same for
        # every token, so that the head can undo it linearly (without it the least-squares copy leaves ~45 %)
        signs = torch.randint(0, 2, (D,), generator=torch.Generator().manual_seed(seed + 2)) * 2 - 1
        net.patch_embed.proj.bias.copy_(IDENTITY_BIAS * (signs - signs.float().mean()))
        for b in [*net.in_blocks, net.mid_block, *net.out_blocks]:
            for m in (b.attn.proj, b.mlp.fc2):
                m.weight.zero_()
                m.bias.zero_()
            if b.skip_linear is not None:
                eye = torch.eye(D) / 2
                b.skip_linear.weight.copy_(torch.cat([eye, eye], 1))
                b.skip_linear.bias.zero_()
        g = torch.Generator().manual_seed(seed + 1)
        x0 = world.render(world.sample_scenes(g, clips, world.train_combos()))
        feats = net.norm(net.patch_embed(x0) + net.pos_embed[:, net.extras:]).reshape(-1, D).double()
        sol = ridge_fit(feats, clip_tokens(net, x0).double(), 1e-6)
        net.decoder_pred.weight.copy_(sol[:D].T.float())
        net.decoder_pred.bias.copy_(sol[D].float())


def contrast_weights(scenes, shape_w, motion_w, supersample=2):
    """Per-latent-pixel loss weights [B, 1, F, S, S]: 1 + shape_w x (the largest change of the object's coverage
    there if the scene had another shape) + motion_w x (the same for another motion). Why: the pixels that tell the
    prompt's shape from the other shapes are a few percent of a clip (a ball and a square of the same place differ
    by 6 % of its variance), so with a plain MSE the shape word barely pays, and the weights trained without this
    ignore it (swapping it changes their prediction's error by 1-5 % at n = 100-700: train/shape_word.py)."""
    cov = world.coverages(scenes, supersample)
    w = torch.ones_like(cov)
    for key, values, k in (('shape', world.SHAPES, shape_w), ('motion', world.MOTIONS, motion_w)):
        if not k:
            continue
        own = [values.index(s[key]) for s in scenes]
        change = torch.zeros_like(cov)
        for j in range(1, len(values)):  # every other value, one rendering per offset
            alt = [dict(s, **{key: values[(o + j) % len(values)]}) for s, o in zip(scenes, own)]
            change = torch.maximum(change, (cov - world.coverages(alt, supersample)).abs())
        w += k * change
    return w[:, None].float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, default=4000)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--lr', type=float, default=7e-4)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--ema', type=float, default=0.999)
    ap.add_argument('--p-uncond', type=float, default=0.1)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--log-every', type=int, default=25)
    ap.add_argument('--ckpt-every', type=int, default=250)
    ap.add_argument('--init', help='start from this checkpoint (its EMA weights) or exported model folder '
                                   '(weights.safetensors + text_encoder.safetensors, as train/export.py writes them)')
    ap.add_argument('--identity-head', action='store_true',
                    help='start the final conv as the identity (identity_head)')
    ap.add_argument('--pca-embed', action='store_true',
                    help='start the patch embedding on the leading principal directions of clean tokens (pca_embed)')
    ap.add_argument('--identity-init', action='store_true',
                    help='start the whole network as a copy of its input (identity_init; includes --pca-embed and '
                         '--identity-head)')
    ap.add_argument('--freeze-embed', action='store_true',
                    help='keep the patch embedding\'s weight where --pca-embed puts it (its bias still trains)')
    ap.add_argument('--freeze-head', action='store_true',
                    help='keep the final conv where --identity-head puts it')
    ap.add_argument('--contrast-weight', type=float, nargs=2, default=(0.0, 0.0), metavar=('SHAPE', 'MOTION'),
                    help='weigh each latent pixel\'s error by 1 + SHAPE x (its coverage change under another shape) + '
                         'MOTION x (the same under another motion) (contrast_weights); 0 0 is the plain MSE')
    ap.add_argument('--shape-masks', action='store_true',
                    help='the latent gets one channel per shape holding the object\'s coverage (world.render masks), '
                         'drawn by the learned shape decoder (train/decoder.py)')
    ap.add_argument('--motion-channels', action='store_true',
                    help='with --shape-masks: two more channels, the object\'s coverage times its heading '
                         '(world.render motion)')
    ap.add_argument('--anneal', action='store_true', help='lr falls linearly to 0 at --steps (after the warmup)')
    for key in ARCH_KEYS:
        ap.add_argument('--' + key.replace('_', '-'), type=int, default=CONFIG[key], help=f'U-ViT {key} (default {CONFIG[key]})')
    ap.add_argument('--bf16', action='store_true',
                    help='run forward and backward under bfloat16 autocast (weights, optimiser and EMA stay float32)')
    ap.add_argument('--prediction', choices=['eps', 'v', 'x0'], default='eps',
                    help='what the network predicts: eps (noise, the official U-ViT), v = sqrt(abar) eps - sqrt(1 - abar) x0, '
                         'or x0 (the clean clip)')
    ap.add_argument('--weighting', choices=list(WEIGHTING), default='eps',
                    help='eps: plain noise-prediction MSE; x0-v: the same MSE weighted by 1/abar_n; x0-v-capped: by min(1/abar_n, 10); '
                         'v-capped (for --prediction x0): the clean-clip MSE weighted by min(1/(1 - abar_n), 10)')
    ap.add_argument('--high-noise', type=float, default=0.0,
                    help='share of samples whose noise level is drawn from --focus-levels instead of all 1000 (where the '
                         'place of the object is decided)')
    ap.add_argument('--focus-levels', default=f'{N_STEPS - HIGH_NOISE_SPAN + 1}-{N_STEPS}',
                    help='the noise levels LO-HI (inclusive) that the --high-noise share is drawn from; at --latent-std 2.0 '
                         'the object cannot be found above n = 600, and its place is decided lower')
    ap.add_argument('--latent-std', type=float, default=world.LATENT_STD,
                    help='the latent normalisation (rgb - mean) / std; a larger std makes the data smaller against the '
                         'noise, so less of it shows through at n = 1000, where sampling starts from pure noise')
    a = ap.parse_args()
    if a.freeze_embed and not a.pca_embed or a.freeze_head and not a.identity_head:
        ap.error('--freeze-embed needs --pca-embed and --freeze-head needs --identity-head (they freeze that start)')

    world.LATENT_STD = a.latent_std
    focus = tuple(int(v) if v.isdigit() else -1 for v in a.focus_levels.split('-'))
    if len(focus) != 2 or not 1 <= focus[0] <= focus[1] <= N_STEPS:
        ap.error(f'--focus-levels {a.focus_levels}: expected LO-HI, integers with 1 <= LO <= HI <= {N_STEPS}')
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    config = dict(CONFIG, **{k: getattr(a, k) for k in ARCH_KEYS})
    if a.motion_channels and not a.shape_masks:
        ap.error('--motion-channels needs --shape-masks')
    if a.shape_masks:
        config['in_chans'] = world.channels(masks=True, motion=a.motion_channels)
    net = UViTVideo(config)
    te = TextEncoder(len(world.VOCAB), world.NUM_TOKENS, config['clip_dim'])
    ema_net = UViTVideo(config).requires_grad_(False)
    ema_te = TextEncoder(len(world.VOCAB), world.NUM_TOKENS, config['clip_dim']).requires_grad_(False)
    if a.init:
        net_sd, text_sd = load_init(a.init)
        net.load_state_dict(widen_channels(net_sd, config))
        te.load_state_dict(text_sd)
    if a.identity_init:
        identity_init(net, a.seed + 4)
    elif a.pca_embed:
        pca_embed(net, a.seed + 4)
    if a.identity_head:
        identity_head(net)
    # Why freeze: started there but left to train, both drift back to what design 5 learned (by step 12 000 the
    # embedding's clean read-out was 0.064 against 0.052 at the start, and the final conv ill-conditioned again).
    # Measured worse all the same (docs/training.md: the objects break up along the token grid)
    frozen = ([net.patch_embed.proj.weight] if a.freeze_embed else []) + \
        (list(net.final_layer.parameters()) if a.freeze_head else [])
    for p in frozen:
        p.requires_grad_(False)
    ema_net.load_state_dict(net.state_dict())
    ema_te.load_state_dict(te.state_dict())
    pairs = [(p, e) for p, e in zip([*net.parameters(), *te.parameters()], [*ema_net.parameters(), *ema_te.parameters()])
             if p.requires_grad]
    params, ema_params = [p for p, _ in pairs], [e for _, e in pairs]
    # official U-ViT optimiser settings (betas (0.9, 0.9), weight decay 0.03); a higher lr for the short run
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.9), weight_decay=0.03)
    # constant after the warmup, so the checkpoint at step K equals a run with --steps K (an early stop is reproducible)
    lr_at = lambda s: a.lr * min(1.0, (s + 1) / a.warmup) * ((1 - s / a.steps) if a.anneal else 1.0)
    abar = torch.tensor(alphas_cumprod(), dtype=torch.float32)
    weight = WEIGHTING[a.weighting](abar)
    data_gen = torch.Generator().manual_seed(a.seed + 1)
    noise_gen = torch.Generator().manual_seed(a.seed + 2)
    combos = world.train_combos()
    empty = torch.tensor(world.tokenize(''))

    log = open(os.path.join(a.out, 'log.jsonl'), 'w')
    json.dump(dict(args=vars(a), config=config, torch=torch.__version__), open(os.path.join(a.out, 'args.json'), 'w'))
    contrast = any(a.contrast_weight)
    t0, acc, acc_plain, cnt = time.time(), 0.0, 0.0, 0

    def save(step):
        state = dict(step=step, config=config, prediction=a.prediction, latent_std=a.latent_std, vocab=world.VOCAB, net=ema_net.state_dict(), text=ema_te.state_dict())
        torch.save(state, os.path.join(a.out, 'ckpt.tmp'))
        os.replace(os.path.join(a.out, 'ckpt.tmp'), os.path.join(a.out, f'ckpt-{step}.pt'))

    for step in range(a.steps):
        scenes = world.sample_scenes(data_gen, a.batch, combos)
        x0 = world.render_channels(scenes, config['in_chans'])
        ids = torch.tensor([world.tokenize(world.prompt(s['colour'], s['shape'], s['motion'], s['background']))
                            for s in scenes])
        drop = torch.rand(a.batch, generator=noise_gen) < a.p_uncond
        ids = torch.where(drop[:, None], empty[None], ids)
        n = torch.randint(1, N_STEPS + 1, (a.batch,), generator=noise_gen)
        if a.high_noise > 0:  # drawn only when asked, so runs without the option stay bit-identical
            hi = torch.randint(focus[0], focus[1] + 1, (a.batch,), generator=noise_gen)
            n = torch.where(torch.rand(a.batch, generator=noise_gen) < a.high_noise, hi, n)
        eps = torch.randn(x0.shape, generator=noise_gen)
        ab = abar[n].view(-1, 1, 1, 1, 1)
        xn = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=a.bf16):
            pred = net(xn, n, te(ids))
        target = {'eps': eps, 'x0': x0, 'v': ab.sqrt() * eps - (1 - ab).sqrt() * x0}[a.prediction]
        sq = (pred.float() - target).pow(2)
        plain = (sq.mean(dim=(1, 2, 3, 4)) * weight[n]).mean()
        loss = ((sq * contrast_weights(scenes, *a.contrast_weight)).mean(dim=(1, 2, 3, 4)) * weight[n]).mean() \
            if contrast else plain
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - d)
        acc, acc_plain, cnt = acc + loss.item(), acc_plain + plain.item(), cnt + 1
        if (step + 1) % a.log_every == 0:
            rec = dict(step=step + 1, loss=acc / cnt, lr=lr_at(step), wall_s=round(time.time() - t0, 1))
            if contrast:  # the loss without the contrast weights, comparable with other runs
                rec['plain_loss'] = acc_plain / cnt
            log.write(json.dumps(rec) + '\n')
            log.flush()
            acc, acc_plain, cnt = 0.0, 0.0, 0
        if (step + 1) % a.ckpt_every == 0:
            save(step + 1)
    save(a.steps)
    log.write(json.dumps(dict(done=True, steps=a.steps, wall_s=round(time.time() - t0, 1))) + '\n')
    log.close()


if __name__ == '__main__':
    main()
