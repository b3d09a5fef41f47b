"""Video benchmark: our INR codecs against x264 and x265 (PyAV, preset medium) on real bytes.

    python bench/video_rd.py [--clip ../shared/media/video/tree.avi] [--frames 120] [--first 0]
                             [--codec hnerv] [--quality 3 ...] [--preset fast|medium|slow]
                             [--rate-aware on|off] [--motion on|off] [--key-pictures on|off]
                             [--device cpu|cuda] [--json out.json]
                             [--anchor x264,x265] [--crf N ...]

Prints, per codec: bpp (file bytes), PSNR-RGB, MS-SSIM, fitting seconds, decode frames/s (CPU), and the
PSNR x264 and x265 reach at the same bpp (interpolated in log-bpp over their CRF sweep): the gap to close.
--anchor (comma-separated; empty for none) and --crf (the anchors' points instead of their sweeps) make
a quick run; a single CRF gives no curve to interpolate, so "PSNR @bpp" is then NaN. With two or more
--quality points, each codec's curve also gets BD-rate (%, negative: fewer bits than the anchor at equal
PSNR) and BD-PSNR (dB) against each anchor's curve, over the range where both overlap.
--first skips that many frames (a clip part the encoder was not tuned on). --rate-aware: hnerv/nerv's
rate-aware fine-tune (learned steps, rate term) on or off; the codec's default without it. --motion:
hnerv's canvas groups for pans and zooms (nerv/motion.py) on or off; the codec's default without it.
--key-pictures: groups drawn over their median frame coded as an image (nerv/keypicture.py) on or off.
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
from mcodec.evaluation.bdrate import bd_quality, bd_rate
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


def bd_figures(curve: list[tuple[float, float]], anchor: list[tuple[float, float]]) -> dict:
    """BD-rate (%) and BD-PSNR (dB) of ``curve`` against ``anchor`` (both (bpp, PSNR) points); NaN where
    there is no curve (one point), no overlap or a non-monotone curve."""
    try:
        args = ([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in curve], [p for _, p in curve])
        return {"bd_rate": bd_rate(*args), "bd_psnr": bd_quality(*args)}
    except ValueError as e:
        return {"bd_rate": float("nan"), "bd_psnr": float("nan"), "why": str(e)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--first", type=int, default=0, help="frames to skip before the --frames coded")
    ap.add_argument("--codec", action="append")
    ap.add_argument("--quality", type=float, action="append", help="one or more (default 3)")
    ap.add_argument("--rate-aware", choices=("on", "off"), help="default: the codec's")
    ap.add_argument(
        "--motion", choices=("on", "off"), help="hnerv's pan/zoom canvas groups; default: the codec's"
    )
    ap.add_argument(
        "--key-pictures", choices=("on", "off"), help="groups drawn over a key picture; default: the codec's"
    )
    ap.add_argument(
        "--block-motion", choices=("on", "off"), help="key pictures moved in blocks; default: the codec's"
    )
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    ap.add_argument("--plot", type=Path, help="a PNG of the curves: PSNR-RGB against bpp, with the anchors'")
    ap.add_argument("--anchor", default="x264,x265", help="comma-separated; empty: no anchors")
    ap.add_argument("--crf", type=int, action="append", help="the anchors' points (default: their sweeps)")
    args = ap.parse_args()
    frames, rate = read_video(args.clip, max_frames=args.first + args.frames)
    frames = frames[args.first :]
    item = (frames, rate)
    options = {} if args.rate_aware is None else {"rate_aware": args.rate_aware == "on"}
    if args.motion is not None:
        options["motion"] = args.motion == "on"
    if args.key_pictures is not None:
        options["key_pictures"] = args.key_pictures == "on"
    if args.block_motion is not None:
        options["block_motion"] = args.block_motion == "on"
    t, _, h, w = frames.shape
    anchors = [a for a in args.anchor.split(",") if a]
    curves = {a: anchor_curve(a, item, args.crf) for a in anchors}
    rows = []
    for codec in args.codec or ["hnerv"]:
        for quality in args.quality or [3]:
            t0 = time.perf_counter()
            data = encode_bytes(
                item, "video", codec, quality, args.device, preset=args.preset, progress=True, **options
            )
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            _, (decoded, _) = decode_bytes(data)
            fps = t / (time.perf_counter() - t0)
            bpp = 8 * len(data) / (t * h * w)
            psnr = psnr_rgb(frames, decoded)
            row = {
                "codec": codec,
                "quality": quality,
                "preset": args.preset,
                "rate_aware": args.rate_aware or "default",
                "motion": args.motion or "default",
                "key_pictures": args.key_pictures or "default",
                "block_motion": args.block_motion or "default",
                "device": args.device,
                "bytes": len(data),
                "bpp": bpp,
                "psnr_rgb": psnr,
                "ms_ssim": ms_ssim(frames, decoded),
                "fit_s": fit_s,
                "decode_fps": fps,
                **{f"{a}_psnr_at_bpp": psnr_at(c, bpp) for a, c in curves.items()},
            }
            rows.append(row)
    bd = {}
    for codec in args.codec or ["hnerv"]:
        curve = sorted((r["bpp"], r["psnr_rgb"]) for r in rows if r["codec"] == codec)
        if len(curve) >= 2:
            bd[codec] = {a: bd_figures(curve, c) for a, c in curves.items()}
    span = f"frames {args.first}..{args.first + t - 1}"
    print(f"\n{args.clip.name}: {span} {w}x{h}, torch threads {torch.get_num_threads()}\n")
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
    for codec, against in bd.items():
        for a, f in against.items():
            why = f" ({f['why']})" if "why" in f else ""
            print(f"{codec} vs {a}: BD-rate {f['bd_rate']:+.1f}%, BD-PSNR {f['bd_psnr']:+.2f} dB{why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "anchors": curves, "bd": bd}, indent=2))
    if args.plot:
        plot(args.plot, rows, curves, bd, f"{args.clip.name} {span}, {w}x{h}, preset {args.preset}")


def plot(path: Path, rows: list[dict], anchors: dict, bd: dict, title: str) -> None:
    """PSNR-RGB against bpp: each codec's points (quality labels), each anchor's CRF sweep, BD figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for codec in dict.fromkeys(r["codec"] for r in rows):
        points = sorted((r["bpp"], r["psnr_rgb"], r["quality"]) for r in rows if r["codec"] == codec)
        figures = "; ".join(
            f"vs {a} {f['bd_rate']:+.0f}%, {f['bd_psnr']:+.2f} dB" for a, f in bd.get(codec, {}).items()
        )
        ax.plot([p[0] for p in points], [p[1] for p in points], "-o", label=f"{codec} {figures}".strip())
        for b, q, quality in points:
            ax.annotate(f"q{quality:g}", (b, q), textcoords="offset points", xytext=(4, -10), fontsize=7)
    for anchor, curve in anchors.items():
        ax.plot([b for b, _ in curve], [q for _, q in curve], "--s", markersize=3, label=f"{anchor} (medium)")
    ax.set_xlabel("bits per pixel (real bytes)")
    ax.set_ylabel("PSNR-RGB (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
