"""A/B of image model files of one codec: real bytes and PSNR-RGB per picture and quality, BD-rate of each
model against the first, per picture and on average.

    python bench/image_ab.py BASE.safetensors [NEW.safetensors...] --data DIR_OR_IMAGES [--codec meanscale]
                             [--preset fast [medium ...]] [--low-frequency auto|on|off ...]
                             [--restoration-filter auto|on|off ...] [--crop 512]
                             [--quality 1 ... 8] [--json out.json]

Every point is a file written by ``encode_bytes`` and read back by ``decode_bytes``, as `mcodec eval` does,
so the rates are real bytes. ``--crop N`` codes the centre N x N of each picture (0: the whole picture):
512 crops make a held-back check of eight photos take about a minute per model on 2 cores. Each model
runs at each ``--preset`` (the encoder's latent refinement), the first model at the first preset being the
base: one file at ``--preset fast medium`` measures what refinement buys, ``--low-frequency off on``
what the low-frequency correction (chunk LFCR) buys (on and off force it; auto, the default, leaves the
choice to the encoder, which fits it at the fast preset to pictures up to 2.5 MP), and
``--restoration-filter off on`` what the restoration filter (chunk WFLT) buys, on the same terms. The side
column is the hyperprior's share of the bytes (the ZLAT chunk), where a drift in the learned priors shows
first. BD-rate runs on each curve's front: a point that costs more bytes than a better-looking one is
left out and counted (nobody would pick it); a picture whose curves do not overlap gets no BD-rate and is
named. This is the check behind a model card's "held-back BD-rate against vN";
`image_rd.py` gives the figures against JPEG, WebP and AVIF.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from mcodec import decode_bytes, encode_bytes
from mcodec.codec.media_io.images import read_image
from mcodec.entropy.container import chunk_sizes
from mcodec.evaluation.bdrate import front_bd_rate
from mcodec.evaluation.metrics import psnr_rgb
from mcodec.evaluation.runner import list_files


def pictures(sources: list[Path], crop: int) -> list[tuple[str, torch.Tensor]]:
    """(name, [3, H, W] uint8) for each file given or in each folder given (the files `mcodec eval` and
    image_rd.py read), centre-cropped to crop x crop where it is larger (crop 0: whole)."""
    out = []
    for f in list_files(sources):
        x = read_image(f)
        h, w = x.shape[-2:]
        if crop:
            ch, cw = min(crop, h), min(crop, w)
            top, left = (h - ch) // 2, (w - cw) // 2
            x = x[:, top : top + ch, left : left + cw].contiguous()
        out.append((f.stem, x))
    return out


def measure(
    x: torch.Tensor,
    codec: str,
    weights: Path,
    quality: int,
    preset: str,
    low_frequency: str,
    restoration_filter: str = "auto",
) -> dict:
    """One real file: its bytes, the ZLAT (hyperprior side) bytes, bpp and PSNR-RGB of the decoded picture.
    ``low_frequency``, ``restoration_filter``: auto (the encoder's choice), on or off."""
    options = {
        name: setting == "on"
        for name, setting in (("low_frequency", low_frequency), ("restoration_filter", restoration_filter))
        if setting != "auto"
    }
    data = encode_bytes(x, "image", codec, quality, weights=weights, preset=preset, **options)
    _, y = decode_bytes(data, weights=weights)
    pixels = x.shape[-1] * x.shape[-2]
    side = sum(n for t, n in chunk_sizes(data) if t == "ZLAT")
    return {"bytes": len(data), "side_bytes": side, "bpp": len(data) * 8 / pixels, "psnr": psnr_rgb(x, y)}


def picture_bd(base: list[dict], test: list[dict]) -> tuple[float, int]:
    """BD-rate (%) of test against base on one picture's points (their fronts), and how many dominated
    points were left out; nan where the curves do not overlap."""
    return front_bd_rate(
        [p["bpp"] for p in base],
        [p["psnr"] for p in base],
        [p["bpp"] for p in test],
        [p["psnr"] for p in test],
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="model files; the first is the base")
    ap.add_argument("--data", nargs="+", type=Path, required=True, help="image files or folders")
    ap.add_argument("--codec", default="meanscale")
    ap.add_argument(
        "--preset", nargs="+", default=["fast"], help="encoder presets, each run with every model"
    )
    ap.add_argument(
        "--low-frequency",
        nargs="+",
        choices=["auto", "on", "off"],
        default=["auto"],
        help="the encoder's low-frequency correction (chunk LFCR): forced on or off, or the encoder's own "
        "choice; each setting run with every model",
    )
    ap.add_argument(
        "--restoration-filter",
        nargs="+",
        choices=["auto", "on", "off"],
        default=["auto"],
        help="the encoder's restoration filter (chunk WFLT), as --low-frequency",
    )
    ap.add_argument("--crop", type=int, default=512, help="centre crop side (0: the whole picture)")
    ap.add_argument("--quality", type=int, nargs="+", default=list(range(1, 9)))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    pics = pictures(args.data, args.crop)
    if not pics:
        sys.exit("image_ab: no images in --data")
    rows = [  # base first
        (m, p, lf, rf)
        for m in args.models
        for p in args.preset
        for lf in args.low_frequency
        for rf in args.restoration_filter
    ]
    labels = [
        " ".join(
            [str(m)]
            + ([p] if len(args.preset) > 1 else [])
            + ([f"lf {lf}"] if len(args.low_frequency) > 1 else [])
            + ([f"rf {rf}"] if len(args.restoration_filter) > 1 else [])
        )
        for m, p, lf, rf in rows
    ]
    points = {}  # (row index, picture) -> [point per quality]
    for i, (m, preset, lf, rf) in enumerate(rows):
        for name, x in pics:
            points[i, name] = [measure(x, args.codec, m, q, preset, lf, rf) for q in args.quality]
            print(f"{labels[i]} {name}", file=sys.stderr, flush=True)

    names = [n for n, _ in pics]
    print(
        f"{len(pics)} pictures ({'whole' if not args.crop else f'centre {args.crop} crops'}), {args.codec}\n"
    )
    print("| model | " + " | ".join(f"q{q} bpp / dB" for q in args.quality) + " | side | BD-rate vs base |")
    print("|---" * (len(args.quality) + 3) + "|")
    report = {"pictures": names, "qualities": args.quality, "models": []}
    for i, (m, preset, lf, rf) in enumerate(rows):
        curves = [points[i, n] for n in names]
        bpp = np.mean([[p["bpp"] for p in c] for c in curves], 0)
        db = np.mean([[p["psnr"] for p in c] for c in curves], 0)
        side = sum(p["side_bytes"] for c in curves for p in c) / sum(p["bytes"] for c in curves for p in c)
        bds, dropped = {}, {}
        for n in names:
            bds[n], dropped[n] = picture_bd(points[0, n], points[i, n])
        comparable = [v for v in bds.values() if not math.isnan(v)]
        mean_bd = float(np.mean(comparable)) if comparable else math.nan
        cells = " | ".join(f"{b:.3f} / {d:.2f}" for b, d in zip(bpp, db, strict=True))
        print(f"| {labels[i]} | {cells} | {side:.1%} | {mean_bd:+.2f}% |")
        report["models"].append(
            {
                "file": str(m),
                "preset": preset,
                "low_frequency": lf,
                "restoration_filter": rf,
                "points": {n: points[i, n] for n in names},
                "side_share": side,
                "bd_rate": bds,
                "dominated_points": dropped,
                "mean_bd_rate": mean_bd,
            }
        )
    for label, entry in zip(labels[1:], report["models"][1:], strict=True):
        per = ", ".join(f"{n} {v:+.1f}" for n, v in entry["bd_rate"].items())
        print(f"\n{label} vs {labels[0]}, per picture: {per}")
        skipped = [n for n, v in entry["bd_rate"].items() if math.isnan(v)]
        if skipped:
            print(f"  not comparable (the curves do not overlap): {', '.join(skipped)}")
        pruned = [f"{n} ({k})" for n, k in entry["dominated_points"].items() if k]
        if pruned:
            print(f"  dominated points left out (more bytes, no better PSNR): {', '.join(pruned)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
