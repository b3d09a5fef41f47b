"""Clips with real motion, made from still photos: a camera pan, a zoom, and an object crossing a still
background, each written as lossless FFV1 (.mkv) for `bench/video_rd.py --clip`.

tree.avi barely moves and megamind is one clip; these give the video codecs motion whose truth is known
(every frame is the photo resampled through a known box). Each clip is the photo seen through a moving
box, resized with Lanczos and the box's sub-pixel position (PIL's ``resize(box=...)``), so a pan moves the
content by fractions of a pixel per frame as a real camera does.

    python bench/data/motion_clips.py OUT_DIR                      # TUNE and HELD_OUT, 96 frames 320x240
    python bench/data/motion_clips.py OUT_DIR --photo P.png --motion pan --frames 8 --size 64x48

Keep HELD_OUT's clips out of everything tuned on them (their photos are also the images' held-back set,
`lomiri_*` in ../shared/media/images): report them beside the TUNE clips.
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mcodec.codec.media_io.video import write_video

PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "media" / "images"
TUNE = (("lomiri_dragonfly.png", "pan"), ("lomiri_sunset.png", "zoom"), ("lomiri_kleiber.png", "object"))
HELD_OUT = (("lomiri_bridge.png", "pan"), ("lomiri_aitzgorri.png", "zoom"), ("lomiri_life.png", "object"))
MOTIONS = ("pan", "zoom", "object")
VIEW = 2.0  # photo pixels per output pixel at the start of every clip (a downscaled view, no upsampling)


def boxes(motion: str, photo: tuple[int, int], size: tuple[int, int], frames: int) -> list[tuple]:
    """The photo box (x0, y0, x1, y1) each frame shows: the camera's path."""
    pw, ph = photo
    w, h = size
    view = min(VIEW, pw / w, ph / h)  # small photos: the widest view that fits
    bw, bh = w * view, h * view
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        if motion == "zoom":  # into the centre, to half the start box's side (no upsampling at VIEW 2)
            s = 0.5**t
            zw, zh = bw * s, bh * s
            x0, y0 = (pw - zw) / 2, (ph - zh) / 2
            out.append((x0, y0, x0 + zw, y0 + zh))
        else:  # pan: left to right across the photo, with a slow vertical sway; object: a still camera
            x0 = (pw - bw) * t if motion == "pan" else (pw - bw) / 2
            y0 = (ph - bh) * (0.5 + 0.25 * math.sin(2 * math.pi * t)) if motion == "pan" else (ph - bh) / 2
            out.append((x0, y0, x0 + bw, y0 + bh))
    return out


def render(photo: Image.Image, motion: str, size: tuple[int, int], frames: int) -> torch.Tensor:
    """uint8 frames [T, 3, H, W] of ``motion`` over ``photo``."""
    w, h = size
    shots = [photo.resize(size, Image.LANCZOS, box=b) for b in boxes(motion, photo.size, size, frames)]
    clip = np.stack([np.asarray(s) for s in shots])
    if motion == "object":  # a quarter-size patch from the photo's top-left corner crosses the frame
        pw, ph = w // 4, h // 4
        patch = np.asarray(photo.resize((pw, ph), Image.LANCZOS, box=(0, 0, pw * VIEW, ph * VIEW)))
        for i in range(frames):
            t = i / max(frames - 1, 1)
            x = round((w - pw) * t)
            y = round((h - ph) * (0.5 + 0.4 * math.sin(3 * math.pi * t)))
            clip[i, y : y + ph, x : x + pw] = patch
    return torch.from_numpy(clip).permute(0, 3, 1, 2).contiguous()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--photo", type=Path, help="one photo instead of TUNE and HELD_OUT (with --motion)")
    ap.add_argument("--motion", choices=MOTIONS, default="pan")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=24)
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    jobs = [(args.photo, args.motion, "")] if args.photo else []
    jobs += [(PHOTOS / p, m, "tune_") for p, m in TUNE if not args.photo]
    jobs += [(PHOTOS / p, m, "heldout_") for p, m in HELD_OUT if not args.photo]
    args.out.mkdir(parents=True, exist_ok=True)
    for path, motion, prefix in jobs:
        with Image.open(path) as im:
            frames = render(im.convert("RGB"), motion, size, args.frames)
        dest = args.out / f"{prefix}{motion}_{Path(path).stem}.mkv"
        write_video(dest, frames, Fraction(args.fps), force=True)
        print(f"{dest}: {args.frames} frames {size[0]}x{size[1]}, {motion} over {Path(path).name}")


if __name__ == "__main__":
    main()
