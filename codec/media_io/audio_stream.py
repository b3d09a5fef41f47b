"""Audio as a stream of blocks: what audio readers produce, the audio codec consumes and produces, and
writers consume, so a long file is never whole in memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

BLOCK = 1 << 16  # samples per block when a tensor is cut into a stream


@dataclass
class AudioStream:
    rate: int  # Hz
    channels: int
    blocks: Iterable[np.ndarray]  # float32 [channels, n] in order; may raise MediaError while read

    @classmethod
    def from_tensor(cls, audio: torch.Tensor, rate: int) -> AudioStream:
        a = audio.detach().cpu().float().numpy()
        return cls(int(rate), a.shape[0], (a[:, i : i + BLOCK] for i in range(0, a.shape[1], BLOCK)))

    def window(self, start: int, length: int) -> AudioStream:
        """Samples [start, start + length) of this stream, zeros where it has none: a negative ``start``
        puts -start zeros first, a stream that ends early is padded. A movie's sound is cut this way to
        the span of its video (same start, same duration)."""
        return AudioStream(self.rate, self.channels, _window(self.blocks, self.channels, start, length))

    def collect(self) -> tuple[torch.Tensor, int]:
        """The whole signal: float32 [channels, N] and the rate."""
        parts = list(self.blocks)
        audio = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)
        return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), self.rate


def _window(blocks: Iterable[np.ndarray], channels: int, start: int, length: int):
    """The blocks of AudioStream.window; stops reading once ``length`` samples are out."""
    pos, left = 0, length  # pos: the source sample at the head of the next block

    def zeros(n: int) -> np.ndarray:
        return np.zeros((channels, n), np.float32)

    if start < 0:
        yield zeros(min(-start, left))
        left -= min(-start, left)
    for block in blocks:
        if left <= 0:
            return
        lo = min(max(start - pos, 0), block.shape[1])
        pos += block.shape[1]
        part = block[:, lo : lo + left]
        if part.shape[1]:
            yield part
            left -= part.shape[1]
    while left > 0:
        yield zeros(min(left, BLOCK))
        left -= min(left, BLOCK)
