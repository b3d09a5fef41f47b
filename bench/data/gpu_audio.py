"""An Ogg Opus copy of an audio training folder, small enough to travel to the GPU machine.

    python bench/data/gpu_audio.py SETS/train .gpu/audio [--kbps 32]   (the GPU plan's; default 24)

SETS/train is bench/data/audio_sets.py's training folder (74 MB as stored: Ogg Vorbis, G.722, FLAC).
The GPU machine has no PyAV and a call may carry 64 MiB with the repository, so the copy is 24 kHz mono
Ogg Opus of what `mcodec train audio` makes of every file anyway (audio_task.training_signal: 24 kHz
mono), which soundfile's ~1 MB wheel reads there (codec/media_io/audio_soundfile.py). The folder layout
stays, so the groups and subgroups the trainer draws from stay too. At 32 kbit/s Opus (PESQ-WB 3.9-4.5
against its source) is far above what the codec learns to reproduce at 6 kbit/s (~2.2): the copy changes
the data much less than the model's own error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import torch

from mcodec.codec.media_io import MediaError, read_audio
from mcodec.codec.training.audio_task import AUDIO_SUFFIXES, SAMPLE_RATE, training_signal

FRAME = 480  # 20 ms at 24 kHz: an Opus frame


def write_opus(path: Path, mono: np.ndarray, kbps: float) -> None:
    """float32 [N] at SAMPLE_RATE -> Ogg Opus at ``kbps``."""
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = int(kbps * 1000)
        pcm = np.clip(mono, -1, 1).astype(np.float32)
        for start in range(0, len(pcm), FRAME):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + FRAME], format="flt", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--kbps", type=float, default=24.0)
    args = ap.parse_args()
    files = sorted(p for p in args.src.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    seconds, skipped = 0.0, []
    for i, path in enumerate(files):
        try:
            audio, rate = read_audio(path)
        except MediaError as e:
            skipped.append(str(e))
            continue
        mono = training_signal(audio, rate)
        dst = (args.out / path.relative_to(args.src)).with_suffix(".opus")
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_opus(dst, mono.numpy(), args.kbps)
        seconds += mono.numel() / SAMPLE_RATE
        if (i + 1) % 200 == 0:
            print(f"{i + 1}/{len(files)} files", flush=True)
    size = sum(f.stat().st_size for f in args.out.rglob("*.opus"))
    print(f"{args.out}: {len(files) - len(skipped)} files, {seconds / 60:.1f} min, {size / 1e6:.1f} MB")
    for line in skipped:
        print("skipped:", line)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
