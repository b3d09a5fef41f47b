"""Video as frames read group by group: what video readers produce and the video codecs consume, so a long
clip is never whole in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from .errors import MediaError


@dataclass
class VideoSource:
    rate: Fraction  # frames/s
    width: int
    height: int
    frames: int  # T, the frame count
    # a fresh pass over the clip: uint8 [3, height, width] frames in order (tensors or numpy arrays, views
    # of any strides); may raise MediaError while read
    read_frames: Callable[[], Iterator[torch.Tensor | np.ndarray]]

    @classmethod
    def from_tensor(cls, frames: torch.Tensor, rate) -> VideoSource:
        """frames: uint8 [T, 3, H, W], already in memory."""
        frames = frames.detach().cpu()
        t, _, h, w = frames.shape
        return cls(Fraction(rate), w, h, t, lambda: iter(frames))

    def groups(self, ranges: Iterable[tuple[int, int]]) -> Iterator[torch.Tensor]:
        """uint8 [b - a, 3, H, W] for each (a, b) of ``ranges`` (increasing, not overlapping), read while
        they are consumed: one pass over the source, holding one group at a time."""
        frames, pos = self.read_frames(), 0
        for a, b in ranges:
            if not pos <= a < b <= self.frames:
                raise ValueError(f"frame range {a}:{b} after frame {pos} of a {self.frames}-frame clip")
            group = torch.empty(b - a, 3, self.height, self.width, dtype=torch.uint8)
            for i in range(pos, b):
                frame = next(frames, None)
                if frame is None:
                    raise MediaError(f"video ended at frame {i} of the {self.frames} it announced")
                if i >= a:  # numpy copies a decoder's [H, W, 3] view 15x faster than torch (0.6 ms)
                    np.copyto(group[i - a].numpy(), np.asarray(frame))
            pos = b
            yield group
            del group  # before the next is read: one group in memory, not two

    def read(self) -> tuple[torch.Tensor, Fraction]:
        """The whole clip: uint8 [T, 3, H, W] and the rate."""
        (frames,) = self.groups([(0, self.frames)])
        return frames, self.rate
