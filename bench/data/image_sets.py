"""The image models' training folder, the shared benchmark set and the held-back photos, as symlinks into
../shared/media/images.

    python bench/data/image_sets.py OUT_DIR [--media ../shared/media/images]

OUT_DIR/train41 holds what meanscale-v7 and later were trained on: the 33 images that are not ``lomiri_*``
and 8 of the 16 lomiri photos. OUT_DIR/shared33 is those 33 (the benchmark's shared set: trained on, so
its figures say how well a model fits). OUT_DIR/heldback is the other 8 lomiri photos, which no model was
trained on: ``bench/image_rd.py --data OUT_DIR/heldback`` is the held-back check a new model must pass.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELD_BACK = ("aitzgorri", "bridge", "free", "greentock", "life", "picture_0b", "seeding", "umang")
NEW_PHOTOS = "lomiri_"  # the 16 photographs added after the first models; the others are "shared"


def link(target: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / target.name
    if not path.is_symlink():
        path.symlink_to(target.resolve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[3] / "shared/media/images")
    args = ap.parse_args()
    held = {f"{NEW_PHOTOS}{name}.png" for name in HELD_BACK}
    for f in sorted(args.media.glob("*.png")):
        if f.name in held:
            link(f, args.out / "heldback")
            continue
        link(f, args.out / "train41")
        if not f.name.startswith(NEW_PHOTOS):
            link(f, args.out / "shared33")
    folders = ("train41", "shared33", "heldback")
    counts = ", ".join(f"{d}/ {len(list((args.out / d).glob('*.png')))}" for d in folders)
    print(f"{args.out}: {counts}")


if __name__ == "__main__":
    main()
