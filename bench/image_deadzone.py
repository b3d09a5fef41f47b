"""Would an encoder dead zone pay for the hyperprior codecs? Each y residual is coded as
sign(r) * floor(|r| + offset); offset 0.5 is plain rounding (what mcodec does), smaller offsets send more
residuals to the predicted mean: fewer bits, more distortion. The decoder is unchanged, so this is purely
an encoder choice. Prints each offset's mean bpp (real file bytes) and PSNR-RGB per quality and its
BD-rate against plain rounding.

    python bench/image_deadzone.py [--data ../shared/media/images] [--every 4] [--codec meanscale]
                                   [--offset 0.5 --offset 0.42 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import registry
from mcodec.codec.media_io import read_image
from mcodec.evaluation.bdrate import bd_rate
from mcodec.evaluation.metrics import psnr_rgb

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "media" / "images"
QUALITIES = range(1, 9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--every", type=int, default=4, help="use every k-th image (sorted by name)")
    ap.add_argument("--codec", default="meanscale")
    ap.add_argument("--offset", type=float, action="append", help="rounding offsets (default 0.5 0.42 0.35)")
    args = ap.parse_args()
    offsets = sorted(set([0.5] + (args.offset or [0.42, 0.35])), reverse=True)
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() == ".png")[:: args.every]
    codec = registry.get(args.codec)  # the instance encode_bytes uses (the registry caches it)
    bpp = {o: np.zeros((len(files), len(QUALITIES))) for o in offsets}
    psnr = {o: np.zeros((len(files), len(QUALITIES))) for o in offsets}
    for i, f in enumerate(files):
        image = read_image(f)
        pixels = image.shape[1] * image.shape[2]
        for o in offsets:
            codec.rounding_offset = o
            for j, q in enumerate(QUALITIES):
                data = encode_bytes(image, "image", args.codec, q)
                bpp[o][i, j] = len(data) * 8 / pixels
                psnr[o][i, j] = psnr_rgb(image, decode_bytes(data)[1])
        print(f"{f.name}", flush=True)
    print(f"\n{len(files)} images, {args.codec}, qualities 1..8 (mean over images)\n")
    print("| offset | bpp | PSNR-RGB (dB) | BD-rate vs 0.5 |\n|---|---|---|---|")
    b0, p0 = bpp[0.5].mean(0), psnr[0.5].mean(0)
    for o in offsets:
        b, p = bpp[o].mean(0), psnr[o].mean(0)
        shown_b, shown_p = " ".join(f"{v:.3f}" for v in b), " ".join(f"{v:.2f}" for v in p)
        print(f"| {o:g} | {shown_b} | {shown_p} | {bd_rate(b0, p0, b, p):+.2f}% |")


if __name__ == "__main__":
    main()
