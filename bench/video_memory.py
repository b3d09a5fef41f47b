"""Peak memory of encoding and decoding a long clip with the video codecs: it must not grow with the length.

    python bench/video_memory.py [--frames 120 600] [--size 640x360] [--codec hnerv] [--quality 1]
                                 [--epochs 0.05] [--json out.json]

For each length it writes a synthetic clip (a moving, slowly changing pattern; FFV1 in .mkv, written group
by group), encodes it in a child process (the Python API's encode_file: ``--epochs`` of each phase per
group, a fraction of an epoch keeps a CPU run to minutes; what memory holds is the same as a full fit's)
and decodes it with ``mcodec decode`` in another, and prints each child's peak resident memory (ru_maxrss)
and wall time. The codecs hold one group of frames at a time (at most 120 frames), so the columns stay
flat as the clip grows past a group.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch
from child_peak import peak

from mcodec.codec.media_io import write_video_stream

ENCODE = """
import sys
from mcodec import encode_file
src, dst, codec, quality, epochs = sys.argv[1:]
encode_file(src, dst, codec, float(quality), force=True, epochs=(float(epochs),) * 2, progress=False)
"""


def synthetic(frames: int, width: int, height: int, group: int = 30):
    """uint8 [n, 3, height, width] groups of a clip: moving stripes and a drifting colour blob."""
    y = torch.arange(height, dtype=torch.float32)[:, None]
    x = torch.arange(width, dtype=torch.float32)[None]
    for start in range(0, frames, group):
        out = []
        for t in range(start, min(start + group, frames)):
            stripes = 0.5 + 0.5 * torch.sin((x + 3 * t) / 9 + torch.sin(y / 23))
            cx, cy = width * (0.5 + 0.3 * math.sin(t / 40)), height * (0.5 + 0.3 * math.cos(t / 55))
            blob = torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.02 * width * height))
            rgb = torch.stack([stripes, blob, 0.5 * stripes + 0.5 * blob * math.cos(t / 30) ** 2])
            out.append((rgb * 255).round().clamp(0, 255).to(torch.uint8))
        yield torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[120, 600])
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    ap.add_argument("--codec", default="hnerv", choices=["hnerv", "nerv"])
    ap.add_argument("--quality", type=float, default=1)
    ap.add_argument("--epochs", type=float, default=0.05, help="of each phase (fit, fine-tune) per group")
    ap.add_argument("--json", type=Path, help="write the rows to this file")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(
        f"{args.codec} q{args.quality:g} at {width}x{height}, {args.epochs:g} epochs of each phase per "
        f"group, {torch.get_num_threads()} threads"
    )
    print(f"{'frames':>7} {'encode MB':>10} {'encode s':>9} {'decode MB':>10} {'decode s':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for frames in args.frames:
            src, bits, rec = Path(tmp) / "in.mkv", Path(tmp) / "in.mcd", Path(tmp) / "rec.mkv"
            write_video_stream(src, synthetic(frames, width, height), 25, width, height, force=True)
            encode = [sys.executable, "-c", ENCODE, str(src), str(bits), args.codec]
            enc = peak([*encode, str(args.quality), str(args.epochs)])
            dec = peak([sys.executable, "-m", "mcodec", "decode", str(bits), str(rec), "--force"])
            print(f"{frames:>7} {enc[0]:>10.0f} {enc[1]:>9.1f} {dec[0]:>10.0f} {dec[1]:>9.1f}", flush=True)
            row = {"frames": frames, "encode_mb": enc[0], "encode_s": enc[1], "decode_mb": dec[0]}
            rows.append({**row, "decode_s": dec[1], "width": width, "height": height})
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        enc, dec = (last[k] / first[k] for k in ("encode_mb", "decode_mb"))
        print(
            f"{last['frames']} frames against {first['frames']}: peak memory {enc:.2f}x encoding, "
            f"{dec:.2f}x decoding"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
