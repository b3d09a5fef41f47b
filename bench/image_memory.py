"""Peak memory and time of `mcodec encode` and `mcodec decode` on large photos: memory must depend on the
transforms' tile (codec/image/tiling.py), not on the photo.

    python bench/image_memory.py [--sizes 4224x3168 8000x6000] [--source baboon.png] [--codec meanscale]
                                 [--quality 4] [--preset fast] [--json out.json]

For each size it makes a photo-like JPEG (a shared photo upscaled to the size, with added grain and
fine texture, so the codec sees detail at every scale), encodes it and decodes it to PNG in a child
process each, and prints the child's peak resident memory (ru_maxrss), wall time and seconds per
megapixel. Issue 20's targets for a 13-megapixel photo (4224x3168): under 2.5 GB and 1.5 s/MP each way
on 2 cores; a 48-megapixel one (8000x6000) round-trips.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from child_peak import peak
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media" / "images"


def photo(source: Path, width: int, height: int, dst: Path) -> None:
    """``source`` upscaled to width x height (bicubic) with grain and a fine texture added, as JPEG q92."""
    im = Image.open(source).convert("RGB").resize((width, height), Image.BICUBIC)
    rng = np.random.default_rng(0)
    for top in range(0, height, 512):  # in bands: the float copy of a 48 MP photo would be 0.6 GB
        band = np.asarray(im.crop((0, top, width, min(top + 512, height))), dtype=np.float32)
        yy, xx = np.mgrid[top : top + band.shape[0], 0:width]
        texture = 6 * np.sin(xx * 0.9 + np.sin(yy * 0.13) * 3) * np.cos(yy * 0.7)
        band += texture[..., None] + rng.normal(0, 4, band.shape)
        im.paste(Image.fromarray(band.clip(0, 255).astype(np.uint8)), (0, top))
    im.save(dst, format="JPEG", quality=92)


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=size, nargs="+", default=[(4224, 3168), (8000, 6000)])
    ap.add_argument("--source", type=Path, default=SHARED / "baboon.png", help="the photo to upscale")
    ap.add_argument("--codec", default="meanscale")
    ap.add_argument("--quality", type=float, default=4.0)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--json", type=Path, help="write the rows to this file")
    args = ap.parse_args()
    mcodec = [sys.executable, "-m", "mcodec"]
    print(f"{args.codec} q{args.quality:g} {args.preset}, {torch.get_num_threads()} threads")
    print(
        f"{'size':>10} {'MP':>5} {'encode MB':>10} {'encode s':>9} {'s/MP':>5}"
        f" {'decode MB':>10} {'decode s':>9} {'s/MP':>5} {'bpp':>6}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in args.sizes:
            src, bits, rec = Path(tmp) / "in.jpg", Path(tmp) / "in.mcd", Path(tmp) / "rec.png"
            photo(args.source, width, height, src)
            enc = peak(
                [
                    *mcodec,
                    "encode",
                    str(src),
                    str(bits),
                    "--codec",
                    args.codec,
                    "--quality",
                    str(args.quality),
                ]
                + ["--preset", args.preset, "--force"]
            )
            dec = peak([*mcodec, "decode", str(bits), str(rec), "--force"])
            with Image.open(rec) as im:
                if im.size != (width, height):
                    sys.exit(f"decoded {im.size[0]}x{im.size[1]}, expected {width}x{height}")
            mp, bpp = width * height / 1e6, bits.stat().st_size * 8 / (width * height)
            print(
                f"{width}x{height:<5} {mp:>5.1f} {enc[0]:>10.0f} {enc[1]:>9.1f} {enc[1] / mp:>5.2f}"
                f" {dec[0]:>10.0f} {dec[1]:>9.1f} {dec[1] / mp:>5.2f} {bpp:>6.3f}",
                flush=True,
            )
            rows.append(
                {
                    "width": width,
                    "height": height,
                    "megapixels": mp,
                    "bpp": bpp,
                    "encode_mb": enc[0],
                    "encode_s": enc[1],
                    "encode_s_per_mp": enc[1] / mp,
                    "decode_mb": dec[0],
                    "decode_s": dec[1],
                    "decode_s_per_mp": dec[1] / mp,
                }
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
