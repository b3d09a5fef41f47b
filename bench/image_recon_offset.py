"""Probe: does a decoder that reconstructs each mean-scale residual at its bin's centroid instead of the bin's
centre (y_hat = mu + k - sign(k) * offset) buy PSNR at the same bytes?

    python bench/image_recon_offset.py --fit TRAIN_DIR --data HELDBACK_DIR [--crop 512] [--quality 1 4 8]

The bytes do not change (the encoder still rounds), so the PSNR difference is the whole effect. Offsets:
``gauss``, the centroid of the bin under the model's own Gaussian N(0, sigma); ``table``, the measured
mean of |r| - |k| per scale index and |k| (1, 2, 3+) on the ``--fit`` pictures, applied to the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).parent))
from image_ab import pictures  # noqa: E402

from mcodec.codec.image import tiling  # noqa: E402
from mcodec.codec.image.hyperprior import STRIDE, load_ours  # noqa: E402
from mcodec.codec.image.tensors import synthesize, to_input  # noqa: E402
from mcodec.entropy import scale_indexes  # noqa: E402
from mcodec.evaluation.metrics import psnr_rgb  # noqa: E402

LEVELS = 64
MAGS = 3  # |k| = 1, 2, 3+


def latents(codec, image: torch.Tensor, quality: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(residual r = y - mu, mu, sigma), float64 [M, h, w], as the fast encoder computes them."""
    model = codec.model
    x = to_input(image, STRIDE, "meanscale")
    with torch.no_grad():
        y = tiling.analysis(model, x, torch.tensor([quality]))
        z = model.hyper_analysis(y)
    z_symbols = torch.round(z[0].double() - codec.z_medians[:, None, None]).to(torch.int64)
    scales, means = codec._hyper_parameters(z_symbols)
    return y[0].double().numpy() - means, means, scales


def gauss_offset(k: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """|k| - E[|r| | r in bin k] under N(0, sigma): how far the centroid lies inside the bin's centre."""
    s = np.maximum(sigma, 0.11)
    a, b = (np.abs(k) - 0.5) / s, (np.abs(k) + 0.5) / s
    mass = norm.sf(a) - norm.sf(b)
    centroid = s * (norm.pdf(a) - norm.pdf(b)) / np.maximum(mass, 1e-300)
    out = np.abs(k) - np.where(mass > 1e-12, centroid, np.abs(k) - 0.5)
    return np.where(k == 0, 0.0, np.clip(out, 0.0, 0.5))


def fit_table(samples: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """[LEVELS, MAGS] mean of |k| - |r| over the nonzero residuals of each scale index and magnitude."""
    total, count = np.zeros((LEVELS, MAGS)), np.zeros((LEVELS, MAGS))
    for r, sigma in samples:
        k = np.rint(r)
        nz = k != 0
        idx = scale_indexes(sigma[nz]).astype(np.int64)
        mag = np.minimum(np.abs(k[nz]), MAGS).astype(np.int64) - 1
        np.add.at(total, (idx, mag), np.abs(k[nz]) - np.abs(r[nz]))
        np.add.at(count, (idx, mag), 1)
    return np.where(count >= 50, total / np.maximum(count, 1), 0.0)


def table_offset(table: np.ndarray, k: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    idx = scale_indexes(sigma.reshape(-1)).astype(np.int64).reshape(k.shape)
    mag = np.clip(np.abs(k), 1, MAGS).astype(np.int64) - 1
    return np.where(k == 0, 0.0, table[idx, mag])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", type=Path, nargs="+", required=True)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--fit-files", type=int, default=12)
    ap.add_argument("--quality", type=float, nargs="+", default=[1, 4, 8])
    args = ap.parse_args()
    codec = load_ours("meanscale", args.weights)
    fit = pictures(args.fit, args.crop)[: args.fit_files]
    data = pictures(args.data, args.crop)
    for q in args.quality:
        table = fit_table([(r, s) for _, x in fit for r, _, s in [latents(codec, x, q)]])
        print(f"q{q:g} table |k|=1 by scale index 0..15:", np.round(table[:16, 0], 3).tolist(), flush=True)
        gains = {"gauss": [], "table": [], "half_gauss": []}
        for name, x in data:
            r, mu, sigma = latents(codec, x, q)
            k = np.rint(r)
            params = {"height": x.shape[1], "width": x.shape[2], "channels": 3}
            base = psnr_rgb(x, synthesize(codec.model, torch.from_numpy(mu + k), q, params, "cpu"))
            row = [f"{name:24s} base {base:.3f}"]
            for kind, off in (
                ("gauss", gauss_offset(k, sigma)),
                ("half_gauss", 0.5 * gauss_offset(k, sigma)),
                ("table", table_offset(table, k, sigma)),
            ):
                y_hat = torch.from_numpy(mu + k - np.sign(k) * off)
                d = psnr_rgb(x, synthesize(codec.model, y_hat, q, params, "cpu")) - base
                gains[kind].append(d)
                row.append(f"{kind} {d:+.3f}")
            print("  ".join(row), flush=True)
        print(f"q{q:g} mean dB: " + "  ".join(f"{k} {np.mean(v):+.4f}" for k, v in gains.items()), flush=True)


if __name__ == "__main__":
    main()
