"""Image rate-distortion benchmark: our image codecs against JPEG, WebP and AVIF (Pillow) on real bytes,
BD-rate on PSNR-RGB and MS-SSIM, and CPU encode/decode seconds for a 768x512 image.

    python bench/image_rd.py [--data ../shared/media/images] [--codec factorized] [--out bench-out/image]
                             [--jobs 2] [--weights CODEC=FILE ...] [--preset fast|medium|slow]

It runs the same harness as `mcodec eval` (results.json, results.csv, rd.png, report.md in --out) and
then times each codec on a 768x512 crop (median of 3 runs, torch's default threads).
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


def time_768x512(
    codec_id: str, files: list[Path], weights: Path | None = None, options: dict | None = None
) -> tuple[float, float]:
    """Median encode and decode seconds of a 768x512 crop of the first image large enough."""
    for f in files:
        image = read_image(f)
        if image.shape[1] >= 512 and image.shape[2] >= 768:
            crop = image[:, :512, :768].contiguous()
            break
    else:
        raise SystemExit("no image of at least 768x512 to time")
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
    args = ap.parse_args()
    codecs = args.codec or ["factorized"]
    weights = {c: Path(f) for c, _, f in (w.partition("=") for w in args.weights)}
    files = list_files([args.data])
    options = {"preset": args.preset} if args.preset else None
    records = run_grid(
        files, args.out, codecs, args.anchor.split(","), None, args.jobs, options=options, weights=weights
    )
    summary = write_reports(records, args.out)
    print(f"\n{len(files)} images from {args.data}; report in {args.out / 'report.md'}\n")
    print("| codec | anchor | BD-rate PSNR-RGB | BD-rate MS-SSIM |\n|---|---|---|---|")
    for row in summary["bd_rate"].get("image", []):
        print(f"| {row['codec']} | {row['anchor']} | {row['psnr_rgb']:+.1f}% | {row['ms_ssim']:+.1f}% |")
    print(f"\nCPU timing, torch threads: {torch.get_num_threads()}\n")
    print("| codec | encode 768x512 (s) | decode 768x512 (s) |\n|---|---|---|")
    for c in codecs:
        presets = registry.info(c).presets
        e, d = time_768x512(c, files, weights.get(c), options if args.preset in presets else None)
        print(f"| {c} | {e:.3f} | {d:.3f} |")


if __name__ == "__main__":
    main()
