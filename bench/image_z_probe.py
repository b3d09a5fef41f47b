"""Probe: what the hyper-latent z of the meanscale model costs, and what two format changes would save.

1. A per-channel "all zero" flag (96 bits): saves the bits of channels that are zero in the whole image.
2. Per-quality z tables: z's bits under the shipped tables against the empirical entropy of z at each
   quality, fitted on the same photos (an optimistic bound: no table cost, no held-out fit).

    python bench/image_z_probe.py PHOTOS [--weights FILE]
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mcodec.codec.image import tiling
from mcodec.codec.image.hyperprior import STRIDE, load_ours
from mcodec.codec.image.tensors import to_input

QUALITIES = (1, 2, 4, 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--weights", type=Path)
    args = ap.parse_args()
    codec = load_ours("meanscale", args.weights)
    zs = {q: [] for q in QUALITIES}
    total = {q: np.zeros(3) for q in QUALITIES}  # bits the flags save, all bits, z bits
    for path in sorted(args.photos.glob("*.png")):
        im = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)
        x = to_input(im, STRIDE, "meanscale")
        for q in QUALITIES:
            with torch.no_grad():
                z = codec.model.hyper_analysis(tiling.analysis(codec.model, x, torch.tensor([float(q)])))
            sym = torch.round(z[0].double() - codec.z_medians[:, None, None]).to(torch.int64).numpy()
            zs[q].append(sym)
            bits = [
                codec.ztables.information_bits(s.reshape(-1), np.full(s.size, c)) for c, s in enumerate(sym)
            ]
            zero = np.array([not s.any() for s in sym])
            chunks = dict(codec.encode(im, q).chunks)
            zbytes, ybytes = len(chunks["ZLAT"]), len(chunks["YLAT"])
            total[q] += (np.sum(np.array(bits)[zero]) - len(sym), (zbytes + ybytes) * 8, zbytes * 8)
            print(
                f"{path.stem} q{q}: z {zbytes / (zbytes + ybytes):.1%} of the bytes, {zero.sum()} of "
                f"{len(sym)} channels all zero",
                flush=True,
            )
    for q in QUALITIES:
        flags, all_bits, z_bits = total[q]
        shipped = fitted = 0.0
        for c in range(zs[q][0].shape[0]):
            v = np.concatenate([s[c].reshape(-1) for s in zs[q]])
            shipped += codec.ztables.information_bits(v, np.full(v.size, c))
            _, counts = np.unique(v, return_counts=True)
            fitted -= float((counts * np.log2(counts / v.size)).sum())
        change = (fitted - shipped) / all_bits
        print(
            f"q{q}: z {z_bits / all_bits:.1%} of the bytes; zero flags change the bytes by "
            f"{-flags / all_bits:+.2%}; per-quality tables at best {fitted / shipped - 1:+.1%} of z "
            f"({change:+.2%} of the bytes)"
        )


if __name__ == "__main__":
    main()
