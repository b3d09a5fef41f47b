"""Padding images to a transform's stride multiple and cropping back."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """x: [B, C, H, W] -> [B, C, H', W'] with H', W' the next multiples, edges replicated
    (cheaper to code than zeros). Replicate padding needs at least 2 pixels, so 1-pixel sides
    are repeated first."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    if h < 2 or w < 2:
        x = x.repeat_interleave(2 if h < 2 else 1, dim=-2).repeat_interleave(2 if w < 2 else 1, dim=-1)
        x = x[..., : max(h, 2), : max(w, 2)]
        ph, pw = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def latent_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Latent grid of an image padded to the stride."""
    return -(-height // stride), -(-width // stride)
