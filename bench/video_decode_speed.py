"""Decoding speed of the video INR decoders: frames/s of ``reconstruct`` (the network pass, entropy
decoding excluded) on freshly initialized networks of the size the codec picks for each quality.

    python bench/video_decode_speed.py [--width 320] [--height 240] [--frames 120] [--quality 3 ...]
                                       [--codec hnerv ...] [--threads N] [--repeat 3] [--json out.json]

The decoder's work does not depend on the weights' values, so random weights time it as a fitted one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mcodec.nerv.codec import network_for, reconstruct
from mcodec.nerv.model import Decoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--quality", type=float, action="append")
    ap.add_argument("--codec", action="append")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for kind in args.codec or ["hnerv"]:
        for quality in args.quality or [3]:
            cfg = network_for(kind, args.height, args.width, args.frames, quality)
            decoder = Decoder(cfg)
            n = args.frames
            inputs = torch.randn(n, cfg.embed_dim, *cfg.grid) if kind == "hnerv" else torch.arange(n) / n
            reconstruct(decoder, inputs[:4], args.height, args.width)  # warm-up
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                reconstruct(decoder, inputs, args.height, args.width)
                best = min(best, time.perf_counter() - t0)
            params = sum(p.numel() for p in decoder.parameters())
            rows.append(
                {
                    "codec": kind,
                    "quality": quality,
                    "channels": cfg.channels,
                    "strides": cfg.strides,
                    "params": params,
                    "fps": n / best,
                }
            )
    print(f"\n{args.width}x{args.height}, {args.frames} frames, torch threads {torch.get_num_threads()}\n")
    print("| codec | q | strides | channels | parameters | decode fps |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['codec']} | {r['quality']:g} | {','.join(map(str, r['strides']))} | "
            f"{','.join(map(str, r['channels']))} | {r['params']} | {r['fps']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
