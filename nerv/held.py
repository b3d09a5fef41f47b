"""Held frames: a group whose frames repeat exactly (a clip resampled to a constant rate, animation on
twos, a paused screen) codes one picture per run of equal frames (FORMAT.md 6.4.3).

The group's header carries ``held``, the run lengths in frame order; HNeRV's embeddings are one per
picture, and every frame of a run is drawn from its picture's. x264 codes such a frame as skipped blocks
for a few bytes; without runs, the fit paid a full set of embeddings for each copy (tree.avi: 120 frames
of which 19 differ), and the decoder drew each copy again.
"""

from __future__ import annotations

import torch


def held_runs(frames: torch.Tensor) -> list[int]:
    """uint8 frames [T, 3, H, W] -> the lengths of its runs of bit-identical consecutive frames (sum T)."""
    runs = [1]
    for i in range(1, frames.shape[0]):  # frame by frame: no temporary the size of the group
        if torch.equal(frames[i], frames[i - 1]):
            runs[-1] += 1
        else:
            runs.append(1)
    return runs


def picture_index(runs: list[int]) -> torch.Tensor:
    """Run lengths -> each frame's picture (int64 [sum(runs)]): frame i is drawn from picture index[i]."""
    return torch.repeat_interleave(torch.arange(len(runs)), torch.tensor(runs, dtype=torch.int64))


def first_frames(runs: list[int]) -> torch.Tensor:
    """Run lengths -> the first frame of each run (int64 [len(runs)])."""
    return torch.tensor([0] + runs[:-1], dtype=torch.int64).cumsum(0)


def runs_of(index: torch.Tensor) -> list[int]:
    """A non-decreasing picture index per frame (a range of a group's) -> its run lengths."""
    return torch.unique_consecutive(index, return_counts=True)[1].tolist()
