"""The audio codec's training folder and its held-back voices, as symlinks into ../shared/media/audio.

    python bench/data/audio_sets.py OUT_DIR [--media ../shared/media/audio]

OUT_DIR/train holds the groups ``mcodec train audio`` draws from evenly (codec/training/audio_task.py):
music/ (every Sonic Pi sample), speech/ (the shared speech files but four), klettres/<language>/ (17 of
its 20 languages) and asterisk/ (the voice en_US_f_Allison). OUT_DIR/heldback holds 16 files of voices
and languages no model was trained on: the four shared speech files left out, 6 prompts of the other
asterisk voice (fr_CA_f_June, 2-6 s each, spread over its list) and 2 syllables of each held-out klettres
language. ``bench/audio_rd.py --speech OUT_DIR/heldback`` measures them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELD_SPEECH = ("numbers.wav", "something.wav", "goforward.wav", "cards_003.wav")
HELD_LANGUAGES = ("he", "hu", "nl")
TRAIN_VOICE, HELD_VOICE = "en_US_f_Allison", "fr_CA_f_June"
G722_BYTES_PER_S = 8000  # 64 kbit/s
PROMPTS, SYLLABLES = 6, 2


def link(target: Path, path: Path) -> None:
    """path -> target; a folder becomes a folder of links (rglob does not descend into a linked folder)."""
    if target.is_dir():
        for child in sorted(target.iterdir()):
            link(child, path / child.name)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_symlink():
        path.symlink_to(target.resolve())


def spread(items: list[Path], n: int) -> list[Path]:
    """n items evenly spaced over the sorted list (its first included)."""
    return [items[i * len(items) // n] for i in range(n)] if len(items) >= n else items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[3] / "shared/media/audio")
    args = ap.parse_args()
    media, train, held = args.media, args.out / "train", args.out / "heldback"

    for f in sorted((media / "music").iterdir()):
        link(f, train / "music" / f.name)
    for f in sorted((media / "speech").iterdir()):
        link(f, (held if f.name in HELD_SPEECH else train / "speech") / f.name)
    for lang in sorted((media / "speech_klettres").iterdir()):
        if lang.name not in HELD_LANGUAGES:
            link(lang, train / "klettres" / lang.name)
            continue
        syllables = sorted((lang / "syllab").glob("*"))
        for f in spread(syllables, SYLLABLES):
            link(f, held / f"{lang.name}_{f.name}")
    link(media / "speech_asterisk" / TRAIN_VOICE, train / "asterisk" / TRAIN_VOICE)
    prompts = sorted(
        f
        for f in (media / "speech_asterisk" / HELD_VOICE).glob("*.g722")
        if 2 * G722_BYTES_PER_S <= f.stat().st_size <= 6 * G722_BYTES_PER_S
    )
    for f in spread(prompts, PROMPTS):
        link(f, held / f"{HELD_VOICE}_{f.name}")
    files = sum(1 for f in train.rglob("*") if f.is_symlink())
    print(f"{args.out}: train/ {files} files, heldback/ {len(list(held.iterdir()))}")


if __name__ == "__main__":
    main()
