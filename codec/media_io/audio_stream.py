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

    def collect(self) -> tuple[torch.Tensor, int]:
        """The whole signal: float32 [channels, N] and the rate."""
        parts = list(self.blocks)
        audio = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)
        return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), self.rate
