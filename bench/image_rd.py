"""Image rate-distortion benchmark: our image codecs against JPEG, WebP and AVIF (Pillow) on real bytes,
BD-rate on PSNR-RGB and MS-SSIM, and CPU encode/decode seconds for a 768x512 image.

    python bench/image_rd.py [--data ../shared/media/images] [--codec factorized] [--out bench-out/image]
                             [--jobs 2] [--weights CODEC=FILE ...] [--preset fast|medium|slow]
                             [--files N] [--quality Q ...] [--anchor jpeg,webp,avif] [--time-size 768x512]

It runs the same harness as `mcodec eval` (results.json, results.csv, rd.png, report.md in --out) and
then times each codec on a 768x512 crop (median of 3 runs, torch's default threads). --files (the first N
images), --quality (our codecs' points; default: each codec's own), --anchor and --time-size make a
quick run on small inputs; the defaults measure what the model cards quote.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import registry
from mcodec.codec.media_io import read_image
from mcodec.evaluation.report import write_reports
from mcodec.evaluation.runner import list_files, run_grid

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "media" / "images"


def time_crop(
    codec_id: str,
    files: list[Path],
    size: tuple[int, int] = (768, 512),
    weights: Path | None = None,
    options: dict | None = None,
) -> tuple[float, float]:
    """Median encode and decode seconds of a ``size`` (width, height) crop of the first image large
    enough, at the codec's default quality."""
    width, height = size
    for f in files:
        image = read_image(f)
        if image.shape[1] >= height and image.shape[2] >= width:
            crop = image[:, :height, :width].contiguous()
            break
    else:
        raise SystemExit(f"no image of at least {width}x{height} to time")
    enc, dec = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        quality = registry.info(codec_id).default_quality
        data = encode_bytes(crop, "image", codec_id, quality, weights=weights, **(options or {}))
        t1 = time.perf_counter()
        decode_bytes(data, weights=weights)
        enc.append(t1 - t0)
        dec.append(time.perf_counter() - t1)
    return statistics.median(enc), statistics.median(dec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--codec", action="append", help="codec id (repeat); default: factorized")
    ap.add_argument("--anchor", default="jpeg,webp,avif")
    ap.add_argument("--out", type=Path, default=Path("bench-out/image"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument(
        "--weights", action="append", default=[], metavar="CODEC=FILE", help="model file for CODEC"
    )
    ap.add_argument(
        "--preset", choices=["fast", "medium", "slow"], help="encoder effort of codecs with presets"
    )
    ap.add_argument("--files", type=int, help="the first N images of --data (default: all)")
    ap.add_argument("--quality", type=float, action="append", help="our codecs' points (repeat)")
    ap.add_argument("--time-size", default="768x512", metavar="WxH", help="the crop timed")
    args = ap.parse_args()
    codecs = args.codec or ["factorized"]
    weights = {c: Path(f) for c, _, f in (w.partition("=") for w in args.weights)}
    files = list_files([args.data])[: args.files]
    size = tuple(int(v) for v in args.time_size.lower().split("x"))
    options = {"preset": args.preset} if args.preset else None
    records = run_grid(
        files,
        args.out,
        codecs,
        args.anchor.split(","),
        args.quality,
        args.jobs,
        options=options,
        weights=weights,
    )
    summary = write_reports(records, args.out)
    print(f"\n{len(files)} images from {args.data}; report in {args.out / 'report.md'}\n")
    print("| codec | anchor | BD-rate PSNR-RGB | BD-rate MS-SSIM |\n|---|---|---|---|")
    for row in summary["bd_rate"].get("image", []):
        print(f"| {row['codec']} | {row['anchor']} | {row['psnr_rgb']:+.1f}% | {row['ms_ssim']:+.1f}% |")
    for row in summary["bd_rate_per_file"].get("image", []):
        print(
            f"{row['codec']} vs {row['anchor']}, file by file ({row['metric']}): mean {row['mean']:+.1f}%, "
            f"better on {row['better']} of {row['compared']}"
        )
    print(f"\nCPU timing, torch threads: {torch.get_num_threads()}\n")
    print(f"| codec | encode {args.time_size} (s) | decode {args.time_size} (s) |\n|---|---|---|")
    for c in codecs:
        presets = registry.info(c).presets
        e, d = time_crop(c, files, size, weights.get(c), options if args.preset in presets else None)
        print(f"| {c} | {e:.3f} | {d:.3f} |")


if __name__ == "__main__":
    main()
