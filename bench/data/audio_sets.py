"""The audio codec's training folder and its held-back voices, as symlinks into ../shared/media/audio.

    python bench/data/audio_sets.py OUT_DIR [--media ../shared/media/audio]

OUT_DIR/train holds the groups ``mcodec train audio`` draws from evenly (codec/training/audio_task.py):
music/ (every Sonic Pi sample), speech/ (the shared speech files but four), klettres/<language>/ (17 of
its 20 languages) and asterisk/ (the voice en_US_f_Allison). OUT_DIR/heldback holds 16 files of voices
and languages no model was trained on: the four shared speech files left out, 6 prompts of the other
asterisk voice (fr_CA_f_June, 2-6 s each, spread over its list) and 2 syllables of each held-out klettres
language. ``bench/audio_rd.py --speech OUT_DIR/heldback`` measures them. OUT_DIR/heldback_wide holds 52
by the same rule (24 prompts, 8 syllables per language): one erratic clip moves a 16-file mean by ~0.05
PESQ-WB (codec/models/rvq.md, session 30), too much to decide between two close training segments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELD_SPEECH = ("numbers.wav", "something.wav", "goforward.wav", "cards_003.wav")
HELD_LANGUAGES = ("he", "hu", "nl")
TRAIN_VOICE, HELD_VOICE = "en_US_f_Allison", "fr_CA_f_June"
G722_BYTES_PER_S = 8000  # 64 kbit/s
HELD_SETS = {"heldback": (6, 2), "heldback_wide": (24, 8)}  # folder: (June prompts, syllables per language)


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
    media, train = args.media, args.out / "train"

    for f in sorted((media / "music").iterdir()):
        link(f, train / "music" / f.name)
    held_speech = []
    for f in sorted((media / "speech").iterdir()):
        if f.name in HELD_SPEECH:
            held_speech.append(f)
        else:
            link(f, train / "speech" / f.name)
    for lang in sorted((media / "speech_klettres").iterdir()):
        if lang.name not in HELD_LANGUAGES:
            link(lang, train / "klettres" / lang.name)
    link(media / "speech_asterisk" / TRAIN_VOICE, train / "asterisk" / TRAIN_VOICE)
    prompts = sorted(
        f
        for f in (media / "speech_asterisk" / HELD_VOICE).glob("*.g722")
        if 2 * G722_BYTES_PER_S <= f.stat().st_size <= 6 * G722_BYTES_PER_S
    )
    klettres = media / "speech_klettres"
    syllables = {lang: sorted((klettres / lang / "syllab").glob("*")) for lang in HELD_LANGUAGES}
    sizes = []
    for name, (n_prompts, n_syllables) in HELD_SETS.items():
        held = args.out / name
        for f in held_speech:
            link(f, held / f.name)
        for lang, files in syllables.items():
            for f in spread(files, n_syllables):
                link(f, held / f"{lang}_{f.name}")
        for f in spread(prompts, n_prompts):
            link(f, held / f"{HELD_VOICE}_{f.name}")
        sizes.append(f"{name}/ {len(list(held.iterdir()))}")
    files = sum(1 for f in train.rglob("*") if f.is_symlink())
    print(f"{args.out}: train/ {files} files, {', '.join(sizes)}")


if __name__ == "__main__":
    main()
