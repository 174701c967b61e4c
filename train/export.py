"""Checkpoint -> the shipped model files (models/uvit-t2v-shapes/ by default):
  model.json            the U-ViT config (official constructor arguments + the video keys)
  weights.safetensors   the EMA U-ViT weights, official state_dict names, float32 (--half: float16, half the size;
                        the engine reads either)
  text_encoder.safetensors  tok_emb [V, clip_dim], pos_emb [n, clip_dim], ln.weight, ln.bias
  vocab.json            the word tokenizer's vocabulary (index = token id; 0 = PAD, 1 = UNK)
  group.json            (existing) its sampler.prediction set to what the checkpoint predicts (eps, v or x0) and its
                        decoder build to the checkpoint's latent: the fixed interpolation decoder for an RGB latent, the
                        shape decoder (decoder.safetensors, from train/decoder.py --export) for one with shape masks,
                        with the checkpoint's latent normalisation
  world.json            the world it was trained on (colours, backgrounds, shapes, motions, held-out combinations),
                        which npm run eval:prompts reads
    python3 train/export.py train/runs/NAME/ckpt.pt [--out models/uvit-t2v-shapes] [--half]
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

import world


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ckpt')
    ap.add_argument('--out', default='models/uvit-t2v-shapes')
    ap.add_argument('--half', action='store_true', help='store the U-ViT weights as float16')
    a = ap.parse_args()
    ck = torch.load(a.ckpt, map_location='cpu')
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'model.json'), 'w') as f:
        json.dump(ck['config'], f, indent=2)
        f.write('\n')
    with open(os.path.join(a.out, 'vocab.json'), 'w') as f:
        json.dump(ck['vocab'], f)
        f.write('\n')
    with open(os.path.join(a.out, 'world.json'), 'w') as f:
        json.dump(dict(colours=world.COLOURS, backgrounds=world.BACKGROUNDS, shapes=world.SHAPES, motions=world.MOTIONS,
                       held_out=world.HELD_OUT, seconds=world.SECONDS, fps=world.FPS), f)
        f.write('\n')
    group = os.path.join(a.out, 'group.json')
    if os.path.exists(group):
        g, pred, std = json.load(open(group)), ck.get('prediction', 'eps'), ck.get('latent_std', world.LATENT_STD)
        # a latent with shape masks is drawn by the learned shape decoder (train/decoder.py --export writes its file)
        C, drawn = ck['config']['in_chans'], world.channels(masks=True)
        decoder = dict(type='shape-decoder', weights='decoder.safetensors') if C > 3 else dict(type='linear-interpolation')
        if C > drawn:  # the motion channels are the U-ViT's alone: the decoder reads RGB and the masks
            decoder['channels'] = drawn
        decoder.update(mean=world.LATENT_MEAN, std=std)
        if g['sampler'].get('prediction', 'eps') != pred or g['build']['decoder'] != decoder:
            g['sampler']['prediction'] = pred
            g['build']['decoder'] = decoder
            with open(group, 'w') as f:
                json.dump(g, f, indent=2)
                f.write('\n')
    net = {k: (v.half() if a.half else v).contiguous() for k, v in ck['net'].items()}
    text = {('tok_emb' if k == 'tok_emb.weight' else k): v.contiguous() for k, v in ck['text'].items()}
    meta = {'step': str(ck['step'])}
    save_file(net, os.path.join(a.out, 'weights.safetensors'), metadata=meta)
    save_file(text, os.path.join(a.out, 'text_encoder.safetensors'), metadata=meta)
    print(f"exported step {ck['step']} to {a.out}: {sum(v.numel() for v in net.values())} U-ViT parameters")


if __name__ == '__main__':
    main()
