"""Probe: would an encoder that codes a downscaled photo (and a decoder that upscales it back, as AV1's
resize mode does) beat full-size coding at the same rate? Per photo, the PSNR-RGB of coding at 0.75x and
0.5x (Lanczos both ways), minus the full-size curve's at the same bits (log-rate interpolation; "-" where
the rate is outside the full-size curve).

    python bench/image_resize_probe.py PHOTOS [--weights FILE]
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mcodec.codec.image.hyperprior import load_ours

QUALITIES = (1, 2, 3, 4, 6, 8)
SCALES = (0.75, 0.5)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def curve(codec, src: Image.Image, scale: float) -> list[tuple[float, float]]:
    """(bpp of the source's pixels, PSNR-RGB against the source) at each quality."""
    small = src if scale == 1 else src.resize([round(s * scale) for s in src.size], Image.Resampling.LANCZOS)
    image = torch.from_numpy(np.asarray(small).copy()).permute(2, 0, 1)
    points = []
    for q in QUALITIES:
        payload = codec.encode(image, q)
        rec = Image.fromarray(codec.decode(payload).permute(1, 2, 0).numpy())
        if scale != 1:
            rec = rec.resize(src.size, Image.Resampling.LANCZOS)
        bits = 8 * sum(len(data) for _, data in payload.chunks)
        points.append((bits / (src.width * src.height), psnr(np.asarray(src), np.asarray(rec))))
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--weights", type=Path)
    args = ap.parse_args()
    codec = load_ours("meanscale", args.weights)
    print("photo: dB against full size at the same rate, q" + " q".join(map(str, QUALITIES)))
    for path in sorted(args.photos.glob("*.png")):
        src = Image.open(path).convert("RGB")
        full = curve(codec, src, 1.0)
        log_rates, dbs = np.log([p[0] for p in full]), [p[1] for p in full]
        parts = []
        for scale in SCALES:
            gains = []
            for bpp, db in curve(codec, src, scale):
                inside = log_rates[0] <= np.log(bpp) <= log_rates[-1]
                gains.append(f"{db - np.interp(np.log(bpp), log_rates, dbs):+.2f}" if inside else "-")
            parts.append(f"{scale}x {' '.join(gains)}")
        print(f"{path.stem}: {' | '.join(parts)}", flush=True)


if __name__ == "__main__":
    main()
