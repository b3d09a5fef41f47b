"""Checkerboard context (He et al. 2021, "Checkerboard context model for efficient learned image
compression"): the latent's positions split like a chessboard's squares. The anchors ((i + j) even) are
coded under the hyperprior's means and scales alone; the other half's are then corrected from the decoded
anchors around them. Two passes over the latent, none of a serial context model's position-by-position
decoding.

The correction starts at zero (its last layer), so a model built from a trained mean-scale model
computes exactly what that model does, and training goes on from there with the transforms.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mcodec.codec.determinism import thread_independent

SCALE_FLOOR = 0.11  # compressai's GaussianConditional lower bound: scales under it code as it
KERNEL = 5  # the anchors a non-anchor sees: its 12 neighbours of the other parity within 2 positions


def anchor_mask(h: int, w: int, like: torch.Tensor, parity: int = 0) -> torch.Tensor:
    """[1, 1, h, w], 1 at the anchors ((i + j) even), 0 elsewhere, of ``like``'s dtype and device;
    ``parity`` 1 for a band of rows that starts on an odd row of the latent."""
    i = torch.arange(h, device=like.device)[:, None]
    j = torch.arange(w, device=like.device)[None, :]
    return ((i + j + parity) % 2 == 0).to(like.dtype)[None, None]


def anchors_of(shape: tuple[int, ...]) -> np.ndarray:
    """bool [M, h, w]: the anchor positions of a latent of ``shape``."""
    mask = anchor_mask(shape[1], shape[2], torch.empty(0, dtype=torch.bool))[0, 0].numpy()
    return np.broadcast_to(mask, shape)


class CheckerboardContext(nn.Module):
    """(anchors, hyperprior scales, means) -> the scales and means of every position (the order of the
    hyperprior's ``entropy_parameters``): the hyperprior's at the anchors, corrected ones elsewhere.
    ``anchors`` is the decoded latent with its other positions 0."""

    def __init__(self, m: int, hidden: int = 64):
        super().__init__()
        self.m, self.hidden = m, hidden
        self.context = nn.Conv2d(m, hidden, KERNEL, padding=KERNEL // 2)
        self.mix = nn.Sequential(
            nn.Conv2d(hidden + 2 * m, 2 * hidden, 1),
            nn.GELU(),
            nn.Conv2d(2 * hidden, 2 * m, 1),
        )
        nn.init.zeros_(self.mix[-1].weight)
        nn.init.zeros_(self.mix[-1].bias)

    def forward(
        self, anchors: torch.Tensor, scales: torch.Tensor, means: torch.Tensor, parity: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scales = scales.clamp_min(SCALE_FLOOR)  # what the likelihood sees anyway: the start is unchanged
        features = torch.cat([self.context(anchors), means, torch.log(scales)], 1)
        d_mean, d_log_scale = self.mix(features).chunk(2, 1)
        mask = anchor_mask(anchors.shape[-2], anchors.shape[-1], anchors, parity)
        return scales * torch.exp((1 - mask) * d_log_scale), means + (1 - mask) * d_mean


BAND_ROWS = 32  # latent rows per pass of the float64 context: its 5x5 columns stay a few MB at any width


def context_parameters(
    context: CheckerboardContext, anchors: np.ndarray, scales: np.ndarray, means: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The coder's side of CheckerboardContext: float64 arrays [M, h, w] in and out (``context`` a float64
    CPU copy), in bands of rows with the kernel's halo, on the thread-independent path (cpu-f64)."""
    halo, h = KERNEL // 2, anchors.shape[1]
    out_means, out_scales = np.empty_like(means), np.empty_like(scales)
    with thread_independent("cpu"):
        for top in range(0, h, BAND_ROWS):
            lo, hi = max(top - halo, 0), min(top + BAND_ROWS + halo, h)
            band = [
                torch.from_numpy(np.ascontiguousarray(a[:, lo:hi]))[None] for a in (anchors, scales, means)
            ]
            # anchor parity must follow the whole latent's rows: a band starting on an odd row flips it
            s, m = context(*band, parity=lo % 2)
            keep = slice(top - lo, top - lo + min(BAND_ROWS, h - top))
            out_means[:, top : top + BAND_ROWS] = m[0, :, keep].numpy()
            out_scales[:, top : top + BAND_ROWS] = s[0, :, keep].numpy()
    return out_scales, out_means
