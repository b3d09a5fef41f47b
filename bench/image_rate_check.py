"""Real file bytes against the model's estimated rate, for a hyperprior image codec (#3's "within 1% of the
estimated rate plus the header").

    python bench/image_rate_check.py [--data ../shared/media/images] [--codec meanscale] [--weights FILE]

For every image and quality 1, 4, 8: the estimate is -log2 of the model's own likelihoods of the latents the
encoder codes (z rounded about the bottleneck's medians, y rounded about the means, Gaussian densities from
unquantized scales: compressai's eval-mode rate); the real figure is the file's ZLAT + YLAT chunk payloads.
The rest of the file (signature, HEAD with its JSON, chunk framing, MEND) is reported as the header.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mcodec import encode_bytes
from mcodec.codec import registry
from mcodec.codec.image.hyperprior import STRIDE
from mcodec.codec.image.latent_refine import LIKELIHOOD_FLOOR, hyper_side
from mcodec.codec.image.tensors import to_input
from mcodec.codec.media_io import read_image
from mcodec.entropy import read_container

QUALITIES = (1.0, 4.0, 8.0)


@torch.no_grad()
def estimated_bytes(codec_id: str, model, image: torch.Tensor, quality: float) -> float:
    x = to_input(image, STRIDE, codec_id)
    y = model.analysis(x, torch.tensor([quality]))
    z_bits, scales, means = hyper_side(model, model.hyper_analysis(y))
    y_hat = torch.round(y - means) + means
    likelihood = model.net.gaussian_conditional._likelihood(y_hat, scales, means)
    return (z_bits - torch.log2(likelihood.clamp_min(LIKELIHOOD_FLOOR)).sum().item()) / 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/media/images")
    ap.add_argument("--codec", default="meanscale", choices=["meanscale", "hyperprior"])
    ap.add_argument("--weights", type=Path)
    args = ap.parse_args()
    codec = registry.get(args.codec, args.weights)
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    print(f"{len(files)} images, {args.codec} ({codec.model_id})\n")
    print("| quality | latent bytes / estimate (mean, min, max) | header bytes (mean) |")
    print("|---|---|---|")
    for q in QUALITIES:
        ratios, headers = [], []
        for path in files:
            image = read_image(path)
            data = encode_bytes(image, "image", args.codec, quality=q, weights=args.weights)
            latent = sum(len(p) for _, p in read_container(data).chunks)
            ratios.append(latent / estimated_bytes(args.codec, codec.model, image, q))
            headers.append(len(data) - latent)
        r = np.array(ratios)
        spread = f"{r.mean():.4f} ({r.min():.4f}, {r.max():.4f})"
        print(f"| {q:g} | {spread} | {np.mean(headers):.0f} |", flush=True)


if __name__ == "__main__":
    main()
