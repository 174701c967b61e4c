"""How well the network's last map, the 3x3x3 final conv (C -> C channels), can draw detail: its transfer matrix
H(f) (C x C, one per frequency of a 16^3 grid) and that matrix's singular values. A singular value near 0 at a
frequency means that a colour direction at that frequency cannot be produced, whatever the layers before it output:
edges of some colours come out blurred or fringed.
    python3 train/final_conv.py models/uvit-t2v-shapes/weights.safetensors [more weights or checkpoints ...]
"""
import sys

import torch
from safetensors.torch import load_file


def singular_values(kernel, n=16):
    C = kernel.shape[0]
    K = torch.zeros(C, C, n, n, n, dtype=torch.float64)
    K[:, :, :3, :3, :3] = kernel.double()
    return torch.linalg.svdvals(torch.fft.fftn(K, dim=(2, 3, 4)).permute(2, 3, 4, 0, 1))  # [n, n, n, C]


def main():
    print('| weights | largest | smallest | frequencies whose smallest is under 1/15 of the largest |')
    print('|---|---|---|---|')
    for path in sys.argv[1:]:
        w = torch.load(path, map_location='cpu')['net'] if path.endswith('.pt') else load_file(path)
        s = singular_values(w['final_layer.weight'].float())
        top = s[..., 0].max()
        print(f'| {path} | {top:.3f} | {s[..., -1].min():.4f} | {(s[..., -1] < top / 15).double().mean() * 100:.0f} % |')


if __name__ == '__main__':
    main()
