"""Audio through soundfile (libsndfile) where PyAV is missing: the GPU machine can carry soundfile's ~1 MB
wheel but not PyAV's 36 MB, and trains on an Ogg Opus copy of the corpus (bench/data/gpu_audio.py).
libsndfile reads WAV, FLAC, Ogg Vorbis and Ogg Opus; not G.722 or MP4."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio_checks import check_audio_header, checked_blocks
from .audio_stream import BLOCK, AudioStream
from .errors import MediaError


def open_audio_soundfile(path: Path) -> AudioStream:
    """As media_io.open_audio: float32 [C, n] blocks in [-1, 1], read while they are consumed."""
    try:
        import soundfile
    except ImportError:
        raise MediaError(f"{path}: reading audio needs PyAV (or soundfile)") from None
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise MediaError(f"{path}: cannot read audio ({e})") from None
    rate, channels = int(info.samplerate), int(info.channels)
    check_audio_header(path, rate, channels)
    return AudioStream(rate, channels, checked_blocks(_blocks(soundfile, path), path, channels))


def _blocks(soundfile, path: Path):
    try:
        for block in soundfile.blocks(str(path), blocksize=BLOCK, dtype="float32", always_2d=True):
            yield np.ascontiguousarray(block.T)
    except (RuntimeError, OSError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None
