"""Where a hyperprior image model's transforms stop: PSNR as its quantization gets finer than its top
quality, and with the latent set freely.

    python bench/image_ceiling.py IMAGE... [--codec meanscale] [--weights FILE] [--quality 8 10 12]
                                  [--crop 512] [--free-steps 0] [--json out.json]

Each quality's gains are those of the model, extrapolated past its top quality along its last step (log
gains linear, as between qualities): finer and finer rounding of the same latent. Rates are the entropy
model's estimate (bits of the rounded z and y), not file bytes: this is a diagnostic of the transforms,
not a rate-distortion benchmark. Where PSNR stops rising with the rate, the synthesis cannot draw the
picture any closer from what the analysis gives it. --free-steps N then runs Adam on the latent itself
(MSE only, no rounding, at the top extrapolated quality): what the synthesis could draw from any latent.
meanscale-v8 (M = 128), centre 512 crops, ``--quality 8 10 12 --free-steps 100``: lomiri_aitzgorri
36.10 / 36.41 / 36.54 dB at 1.08 / 1.45 / 1.85 bpp, a free latent 36.90; baboon 26.32 / 26.37 / 26.37 at
1.77 / 2.16 / 2.57 bpp, a free latent 26.70. JPEG keeps climbing there (codec/training/image_widen.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mcodec.codec import registry
from mcodec.codec.image.latent_refine import LIKELIHOOD_FLOOR, hyper_side
from mcodec.evaluation.metrics import psnr_rgb


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two [1, 3, H, W] images in [0, 1] as the 8-bit pictures a decoder writes."""
    return psnr_rgb(*((v[0].clamp(0, 1) * 255).round().to(torch.uint8) for v in (a, b)))


def load(path: Path, crop: int) -> torch.Tensor:
    """The centre crop (at most crop x crop, sides a multiple of 64) of an image, [1, 3, H, W] in [0, 1]."""
    x = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255
    h, w = (min(s, crop) // 64 * 64 for s in x.shape[1:])
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    return x[None, :, top : top + h, left : left + w]


def measure(model, x: torch.Tensor, quality: float) -> dict:
    gain, inv_gain = model.gains(torch.tensor([float(quality)]), extrapolate=True)
    with torch.no_grad():
        y = model.net.g_a(x) * gain
        z_bits, scales, means = hyper_side(model, model.hyper_analysis(y))
        y_hat = torch.round(y - means) + means
        likelihoods = model.net.gaussian_conditional._likelihood(y_hat, scales, means)
        y_bits = -torch.log2(likelihoods.clamp_min(LIKELIHOOD_FLOOR)).sum().item()
        x_hat = model.net.g_s(y_hat * inv_gain)
    pixels = x.shape[-2] * x.shape[-1]
    return {"quality": quality, "bpp_estimated": (z_bits + y_bits) / pixels, "psnr_rgb": psnr(x_hat, x)}


def free_latent(model, x: torch.Tensor, quality: float, steps: int) -> float:
    """PSNR of the synthesis from a latent fitted to the picture (MSE, unrounded), from the analysis's."""
    gain, inv_gain = model.gains(torch.tensor([float(quality)]), extrapolate=True)
    with torch.no_grad():
        y0 = model.net.g_a(x) * gain
    y = y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=0.05)
    for _ in range(steps):
        loss = (model.net.g_s(y * inv_gain) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return psnr(model.net.g_s(y * inv_gain), x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--codec", default="meanscale", choices=["meanscale", "hyperprior"])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--quality", type=float, nargs="+", default=[8.0, 10.0, 12.0])
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--free-steps", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    codec = registry.get(args.codec, args.weights)
    model = codec.model.eval().requires_grad_(False)
    rows = []
    print(f"{codec.model_id} (M = {model.m}): quality, estimated bpp, PSNR-RGB")
    for path in args.images:
        x = load(path, args.crop)
        row = {"image": path.name, "points": [measure(model, x, q) for q in args.quality]}
        if args.free_steps:
            row["free_latent_psnr"] = free_latent(model, x, max(args.quality), args.free_steps)
        rows.append(row)
        points = "  ".join(
            f"q{p['quality']:g} {p['bpp_estimated']:.3f} {p['psnr_rgb']:.2f}" for p in row["points"]
        )
        free = f"  free latent {row['free_latent_psnr']:.2f}" if args.free_steps else ""
        print(f"{path.name}: {points}{free}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": codec.model_id, "m": model.m, "images": rows}, indent=1))


if __name__ == "__main__":
    main()
