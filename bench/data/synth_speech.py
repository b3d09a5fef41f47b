"""Synthesize a speech corpus with espeak-ng (Debian package ``espeak-ng``) for training the audio codec.

Our real speech (../shared/media/audio/speech) is 31 s of three voices; formant-synthesized speech in
many voices, pitches and speeds adds phonetic variety the model would otherwise never hear. Text comes
from the licence texts every Debian system has. Output: 24 kHz mono FLAC, one file per utterance.

    python bench/data/synth_speech.py OUT_DIR [--minutes 8]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tempfile
from pathlib import Path

import torch
import torchaudio

from mcodec.codec.audio.model import SAMPLE_RATE
from mcodec.codec.media_io import read_audio, write_audio

TEXT_SOURCES = ("Apache-2.0", "GPL-3", "LGPL-2.1", "Artistic", "MPL-2.0", "GFDL-1.3")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2")


def sentences() -> list[str]:
    text = " ".join(
        Path("/usr/share/common-licenses", name).read_text(errors="ignore")
        for name in TEXT_SOURCES
        if Path("/usr/share/common-licenses", name).exists()
    )
    text = re.sub(r"[^A-Za-z0-9,.;:'?! ]+", " ", text)
    parts = [s.strip() for s in re.split(r"(?<=[.;:?!])\s+", text)]
    return [s for s in parts if 40 <= len(s) <= 300]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    pool = sentences()
    rng.shuffle(pool)
    total, index = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp, "u.wav")
        while total < args.minutes * 60 and pool:
            text = " ".join(pool.pop() for _ in range(min(3, len(pool))))
            voice = f"{rng.choice(VOICES)}+{rng.choice(VARIANTS)}"
            speed, pitch = rng.randint(120, 200), rng.randint(20, 80)
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text]
            subprocess.run(cmd, check=True, capture_output=True)
            audio, rate = read_audio(wav)
            mono = torchaudio.functional.resample(audio.mean(0, keepdim=True), rate, SAMPLE_RATE)
            mono = mono / mono.abs().max().clamp_min(1e-4) * 0.9
            write_audio(args.out / f"espeak_{index:03d}.flac", mono.clamp(-1, 1), SAMPLE_RATE, force=True)
            total += mono.shape[1] / SAMPLE_RATE
            index += 1
    print(f"{index} utterances, {total / 60:.1f} min in {args.out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
