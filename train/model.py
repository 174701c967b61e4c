"""The official text-to-image U-ViT (libs/uvit_t2i.py of baofff/U-ViT) with this project's video extension: a Conv3d
patch embed (pt, p, p), tokens in (frame, row, col) order, decoder_pred ordered (pt, p1, p2, C) and a 3-D final conv.
Parameter names are the official state_dict names, which the TypeScript engine loads unchanged; plus the small text
encoder (token embedding + learned positions + LayerNorm) that is exported to ONNX for the driver.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as Fn


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, L, C = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        x = Fn.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(x.transpose(1, 2).reshape(B, L, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, skip=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None

    def forward(self, x, skip=None):
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, pt, p, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=(pt, p, p), stride=(pt, p, p))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class UViTVideo(nn.Module):
    """cfg: the model's config JSON (img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
    mlp_time_embed=False, conv=True, skip=True, clip_dim, num_clip_token, num_frames, temporal_patch_size)."""

    def __init__(self, cfg):
        super().__init__()
        assert not cfg['mlp_time_embed'] and cfg['conv'] and cfg['skip']
        D, p, pt, C = cfg['embed_dim'], cfg['patch_size'], cfg['temporal_patch_size'], cfg['in_chans']
        self.cfg = cfg
        self.patch_embed = PatchEmbed(pt, p, C, D)
        self.time_embed = nn.Identity()
        self.context_embed = nn.Linear(cfg['clip_dim'], D)
        self.extras = 1 + cfg['num_clip_token']
        grid = cfg['img_size'] // p
        self.grid, self.frames = grid, cfg['num_frames'] // pt
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extras + self.frames * grid * grid, D))
        blk = lambda skip=False: Block(D, cfg['num_heads'], cfg['mlp_ratio'], cfg['qkv_bias'], skip)
        n = cfg['depth'] // 2
        self.in_blocks = nn.ModuleList([blk() for _ in range(n)])
        self.mid_block = blk()
        self.out_blocks = nn.ModuleList([blk(True) for _ in range(n)])
        self.norm = nn.LayerNorm(D)
        self.decoder_pred = nn.Linear(D, pt * p * p * C)
        self.final_layer = nn.Conv3d(C, C, 3, padding=1)
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        self.apply(_init_weights)

    def forward(self, x, timesteps, context):
        x = self.patch_embed(x)
        t = self.time_embed(timestep_embedding(timesteps, x.shape[-1]))
        x = torch.cat([t[:, None], self.context_embed(context), x], dim=1) + self.pos_embed
        skips = []
        for b in self.in_blocks:
            x = b(x)
            skips.append(x)
        x = self.mid_block(x)
        for b in self.out_blocks:
            x = b(x, skips.pop())
        x = self.decoder_pred(self.norm(x))[:, self.extras:]
        return self.final_layer(self.unpatchify(x))

    def unpatchify(self, x):
        # B (f h w) (pt p1 p2 C) -> B C (f pt) (h p1) (w p2)
        c = self.cfg
        B, pt, p, C, g = x.shape[0], c['temporal_patch_size'], c['patch_size'], c['in_chans'], self.grid
        x = x.reshape(B, self.frames, g, g, pt, p, p, C).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(B, C, self.frames * pt, g * p, g * p)


def _init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)


class TextEncoder(nn.Module):
    """ids [B, n] -> LayerNorm(token embedding + learned position embedding) [B, n, dim]."""

    def __init__(self, vocab, n, dim):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Parameter(torch.zeros(n, dim))
        self.ln = nn.LayerNorm(dim)
        nn.init.normal_(self.tok_emb.weight, std=1.0)
        nn.init.normal_(self.pos_emb, std=0.5)

    def forward(self, ids):
        return self.ln(self.tok_emb(ids) + self.pos_emb)
