"""Video benchmark: our INR codecs against x264 and x265 (PyAV, preset medium) on real bytes.

    python bench/video_rd.py [--clip ../shared/media/video/tree.avi] [--frames 120] [--codec hnerv]
                             [--quality 3] [--preset fast|medium|slow] [--device cpu|cuda] [--json out.json]
                             [--anchor x264,x265] [--crf N ...]

Prints, per codec: bpp (file bytes), PSNR-RGB, MS-SSIM, fitting seconds, decode frames/s (CPU), and the
PSNR x264 and x265 reach at the same bpp (interpolated in log-bpp over their CRF sweep): the gap to close.
--anchor (comma-separated; empty for none) and --crf (the anchors' points instead of their sweeps) make
a quick run; a single CRF gives no curve to interpolate, so "PSNR @bpp" is then NaN.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mcodec import decode_bytes, encode_bytes
from mcodec.codec.media_io import read_video
from mcodec.evaluation.contenders import make_anchor
from mcodec.evaluation.metrics import ms_ssim, psnr_rgb

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "video" / "tree.avi"


def anchor_curve(anchor: str, item, crfs: list[int] | None = None) -> list[tuple[float, float]]:
    """(bpp, PSNR-RGB) of the anchor at each CRF (default: its sweep), by increasing bpp."""
    frames = item[0]
    pixels = frames.shape[0] * frames.shape[2] * frames.shape[3]
    contender = make_anchor(anchor, crfs)
    points = []
    for crf in contender.points:
        trial = contender.run(item, crf)
        points.append((8 * trial.bytes / pixels, psnr_rgb(frames, trial.decoded[0])))
    return sorted(points)


def psnr_at(curve: list[tuple[float, float]], bpp: float) -> float:
    """Anchor PSNR at this bpp, linear in log-bpp between its points (NaN outside its range)."""
    rates, psnrs = np.log([p[0] for p in curve]), [p[1] for p in curve]
    if not rates[0] <= np.log(bpp) <= rates[-1]:
        return float("nan")
    return float(np.interp(np.log(bpp), rates, psnrs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--codec", action="append")
    ap.add_argument("--quality", type=float, default=3)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    ap.add_argument("--anchor", default="x264,x265", help="comma-separated; empty: no anchors")
    ap.add_argument("--crf", type=int, action="append", help="the anchors' points (default: their sweeps)")
    args = ap.parse_args()
    frames, rate = read_video(args.clip, max_frames=args.frames)
    item = (frames, rate)
    t, _, h, w = frames.shape
    anchors = [a for a in args.anchor.split(",") if a]
    curves = {a: anchor_curve(a, item, args.crf) for a in anchors}
    rows = []
    for codec in args.codec or ["hnerv"]:
        t0 = time.perf_counter()
        data = encode_bytes(
            item, "video", codec, args.quality, args.device, preset=args.preset, progress=True
        )
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, (decoded, _) = decode_bytes(data)
        fps = t / (time.perf_counter() - t0)
        bpp = 8 * len(data) / (t * h * w)
        psnr = psnr_rgb(frames, decoded)
        row = {
            "codec": codec,
            "quality": args.quality,
            "preset": args.preset,
            "device": args.device,
            "bpp": bpp,
            "psnr_rgb": psnr,
            "ms_ssim": ms_ssim(frames, decoded),
            "fit_s": fit_s,
            "decode_fps": fps,
            **{f"{a}_psnr_at_bpp": psnr_at(c, bpp) for a, c in curves.items()},
        }
        rows.append(row)
    print(f"\n{args.clip.name}: {t} frames {w}x{h}, torch threads {torch.get_num_threads()}\n")
    columns = ["codec", "q", "preset", "bpp", "PSNR-RGB", "MS-SSIM", "fit s", "decode fps"]
    columns += [f"{a} PSNR @bpp" for a in curves]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        cells = [
            r["codec"],
            f"{r['quality']:g}",
            r["preset"],
            f"{r['bpp']:.4f}",
            f"{r['psnr_rgb']:.2f}",
            f"{r['ms_ssim']:.4f}",
            f"{r['fit_s']:.0f}",
            f"{r['decode_fps']:.0f}",
        ]
        cells += [f"{r[f'{a}_psnr_at_bpp']:.2f}" for a in curves]
        print("| " + " | ".join(cells) + " |")
    for a, c in curves.items():
        print(f"{a} (crf sweep): " + ", ".join(f"{b:.3f} bpp {p:.2f} dB" for b, p in c))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "anchors": curves}, indent=2))


if __name__ == "__main__":
    main()
