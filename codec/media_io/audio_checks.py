"""The checks every audio reader makes: a header within bounds, then blocks that are finite, not too many
and not none at all."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import MediaError

MAX_AUDIO_CHANNELS, MAX_AUDIO_SAMPLES = 64, 1 << 31


def check_audio_header(path: Path, rate: int, channels: int) -> None:
    if not (1 <= channels <= MAX_AUDIO_CHANNELS and 1 <= rate <= 768000):
        raise MediaError(f"{path}: unsupported audio ({channels} channels at {rate} Hz)")


def checked_blocks(blocks: Iterable[np.ndarray], path: Path, channels: int):
    """float32 [channels, n] blocks as they come; MediaError on NaN or infinite samples, on a stream longer
    than MAX_AUDIO_SAMPLES in all, and at the end of one with no samples."""
    total = 0
    for block in blocks:
        total += block.shape[1]
        if total > MAX_AUDIO_SAMPLES // channels:
            raise MediaError(f"{path}: audio too long")
        if not np.isfinite(block).all():
            raise MediaError(f"{path}: audio contains NaN or infinite samples")
        yield block
    if total == 0:
        raise MediaError(f"{path}: audio has no samples")
