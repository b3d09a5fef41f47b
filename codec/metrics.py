"""Distortion measures on 8-bit media."""

from __future__ import annotations

import math

import torch


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0) -> float:
    """PSNR in dB between two uint8 tensors of one shape (all channels pooled: PSNR-RGB for images)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)
